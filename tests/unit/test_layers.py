"""The directions of the layout (README, "Layout"): the bottom layers never import an area or the
web; an area's use cases never import the web; areas reach each other only through the modules
they declare public; only the app factory imports another area's routes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PORTAL = Path(__file__).resolve().parents[2] / "portal"
BOTTOM = {"domain", "crypto", "policy", "db", "config", "kernel"}
AREAS = {"workspace", "consents", "referrals", "selfservice", "compliance", "admin", "auth",
         "devtools"}
# What each area offers the others (and the web layer, the CLI): its use cases, never its pages.
PUBLIC = {
    "workspace": {"service", "people", "lifecycle"},
    "consents": {"service"},
    "referrals": {"service"},
    "selfservice": set(),
    "compliance": {"console", "exports"},
    "admin": {"service", "keys"},
    "auth": {"service", "sessions", "guards", "oidc", "api_tokens"},
    "devtools": {"seed", "devidp"},
}
# The edges of the web: these may import whichever routes they mount.
MOUNTS = {"portal.web.app"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PORTAL.parent).with_suffix("").parts).removesuffix(
        ".__init__")


def _imports(path: Path) -> set[str]:
    """The portal modules a file imports, with `from portal.x import y` resolved to the module
    portal.x.y when y is one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("portal")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("portal"):
            base = node.module or ""
            for alias in node.names:
                child = f"{base}.{alias.name}"
                as_path = PORTAL.parent / Path(*child.split("."))
                is_module = as_path.with_suffix(".py").exists() or as_path.is_dir()
                found.add(child if is_module else base)
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_routes(module: str) -> bool:
    return module.rsplit(".", 1)[-1].endswith("routes")


GRAPH = {_module(p): _imports(p) for p in PORTAL.rglob("*.py")}


def test_the_graph_is_read() -> None:
    assert "portal.kernel.access" in GRAPH["portal.workspace.service"]
    assert "portal.compliance.console" in GRAPH["portal.web.nav"]  # from-package resolution


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _top(m) in BOTTOM))
def test_the_bottom_imports_only_the_bottom(module: str) -> None:
    above = sorted(t for t in GRAPH[module] if _top(t) not in BOTTOM)
    assert not above, f"{module} imports {above}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _top(m) in AREAS
                                          and not _is_routes(m)))
def test_use_cases_never_import_the_web(module: str) -> None:
    web = sorted(t for t in GRAPH[module] if _top(t) == "web" or _is_routes(t))
    assert not web, f"{module} imports {web}"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_areas_meet_only_through_public_modules(module: str) -> None:
    wrong = []
    for target in GRAPH[module]:
        area = _top(target)
        if area not in AREAS or area == _top(module):
            continue
        name = target.split(".")[2] if target.count(".") >= 2 else ""
        if _is_routes(target):
            if module not in MOUNTS:
                wrong.append(target)
        elif name not in PUBLIC[area]:
            wrong.append(target)
    assert not wrong, f"{module} reaches into {sorted(wrong)}"


def test_every_area_is_declared() -> None:
    packages = {p.name for p in PORTAL.iterdir() if (p / "__init__.py").exists()}
    assert packages - BOTTOM - {"web", "static"} == AREAS
