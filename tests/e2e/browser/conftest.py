"""Browser-test harness: Chromium through Playwright, the portal as a real server, a real
certified OpenID provider (npm `oidc-provider`) on loopback, and axe-core checks.

The tools come from `scripts/ensure-test-tools.sh` (Debian's Chromium, node_modules). Without
them the tests here are skipped, except when CI=true, where they fail.

Fixtures:
- ``browser_type_launch_args`` (session): Playwright launches /usr/bin/chromium, headless.
- ``portal_port`` (session): a free loopback port for the live portal.
- ``oidc_provider`` (session): the running provider, an :class:`OidcProvider`. Its client's
  redirect URIs default to ``http://127.0.0.1:<portal_port>/auth/callback/e2e``; a test module
  may change them with ``@pytest.mark.parametrize("oidc_provider", [[uri, ...]], indirect=True)``.
- ``live_portals`` (session): the :class:`LivePortals` factory that runs the portal with uvicorn
  in a thread, one server at a time on ``portal_port``; ``.get(backend)`` shares a server,
  ``.fresh(backend)`` restarts it on a new, freshly migrated and seeded database.
- ``live_portal_server``: the :class:`LivePortal` for the test (SQLite, or the test's
  ``backend`` when it asks for that fixture: then it runs on SQLite and on PostgreSQL).
- ``live_portal``: its base URL (``http://127.0.0.1:<portal_port>``).
- ``axe`` / ``assert_accessible`` (fixtures returning callables, also plain functions
  ``axe_violations(page)`` / ``assert_accessible(page)`` here): axe-core's serious and critical
  violations, under the page's real Content-Security-Policy.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from portal.config import Settings
from portal.db import migrate
from portal.db.engine import make_engine, make_session_factory
from portal.devtools.seed import seed_demo
from portal.kernel.wiring import Services
from portal.web.app import create_app

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path(os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium"))
NODE_MODULES = ROOT / "node_modules"
OIDC_SERVER = ROOT / "tests" / "e2e" / "oidc_provider" / "server.mjs"
AXE_SCRIPT = NODE_MODULES / "axe-core" / "axe.min.js"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
OIDC_CLIENT_ID = "lead-portal-e2e"
OIDC_PROVIDER_ID = "e2e"
OIDC_SECRET_ENV = "PORTAL_OIDC_E2E_SECRET"
STARTUP_TIMEOUT = 30.0
BROWSER_LOGIN_RATE_LIMIT = 100_000  # sign-in requests a minute: never reached by the tests


def _tool_missing(what: str) -> None:
    message = f"{what}; run scripts/ensure-test-tools.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Chromium ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium: Playwright cannot download its own browser builds here."""
    if not CHROMIUM.exists():
        _tool_missing(f"{CHROMIUM} is missing")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def base_url(pytestconfig: pytest.Config) -> str | None:
    """Replaces pytest-playwright's fallback `base_url`, a session fixture defined as an
    instance method, which pytest 9 warns about (an error under filterwarnings = error).
    Pages here use absolute URLs from `live_portal`."""
    value = pytestconfig.getoption("--base-url", default=None)
    return str(value) if value else None


# --- The OpenID provider -----------------------------------------------------------------------


@dataclass(frozen=True)
class OidcAccount:
    login: str
    password: str
    sub: str
    email: str
    name: str
    groups: list[str]
    organization: str


E2E_ACCOUNTS = {
    "case_manager": OidcAccount(
        login="casey.morgan", password="e2e-case-manager-pass", sub="e2e-sub-casey-morgan",
        email="casey.morgan@harbor-lead.example", name="Casey Morgan",
        groups=["lead-case-managers"], organization="harbor-lead"),
    "housing_navigator": OidcAccount(
        login="hana.ito", password="e2e-housing-pass", sub="e2e-sub-hana-ito",
        email="hana.ito@hope-housing.example", name="Hana Ito",
        groups=["lead-housing-navigators"], organization="hope-housing"),
    "no_role": OidcAccount(
        login="nolan.reyes", password="e2e-no-role-pass", sub="e2e-sub-nolan-reyes",
        email="nolan.reyes@harbor-lead.example", name="Nolan Reyes",
        groups=["harbor-all-staff"], organization="harbor-lead"),
}


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    accounts: dict[str, OidcAccount]
    process: subprocess.Popen[bytes] = field(repr=False)
    log_file: Path = field(repr=False)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def _wait_for_ready(process: subprocess.Popen[bytes], log_file: Path) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    buffer = b""
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            buffer += chunk
            for line in buffer.decode(errors="replace").splitlines():
                if line.startswith("READY "):
                    return line.removeprefix("READY ").strip()
    finally:
        selector.close()
    process.kill()
    process.wait()
    raise RuntimeError(
        f"the OpenID provider did not start:\n{buffer.decode(errors='replace')}\n"
        f"{log_file.read_text(errors='replace')}"
    )


@pytest.fixture(scope="session")
def portal_port() -> int:
    """The loopback port of the live portal (chosen first: the OIDC client needs it)."""
    return _free_port()


@pytest.fixture(scope="session")
def oidc_provider(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, portal_port: int
) -> Iterator[OidcProvider]:
    """`node tests/e2e/oidc_provider/server.mjs` on a free port, with the portal as its client."""
    if not (NODE_MODULES / "oidc-provider").is_dir():
        _tool_missing("node_modules/oidc-provider is missing")
    portal = f"http://127.0.0.1:{portal_port}"
    redirect_uris = list(getattr(request, "param", None)
                         or [f"{portal}/auth/callback/{OIDC_PROVIDER_ID}"])
    post_logout = [f"{portal}/", f"{portal}/auth/logged-out"]
    directory = tmp_path_factory.mktemp("oidc-provider")
    accounts_file = directory / "accounts.json"
    accounts_file.write_text(json.dumps([vars(a) for a in E2E_ACCOUNTS.values()], indent=2))
    log_file = directory / "provider.log"
    port = _free_port()
    secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "PORT": str(port),
        "CLIENT_ID": OIDC_CLIENT_ID,
        "CLIENT_SECRET": secret,
        "REDIRECT_URIS": ",".join(redirect_uris),
        "POST_LOGOUT_REDIRECT_URIS": ",".join(post_logout),
        "ACCOUNTS_FILE": str(accounts_file),
        "NODE_NO_WARNINGS": "1",
    }
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            ["node", str(OIDC_SERVER)], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        )
    issuer = _wait_for_ready(process, log_file)
    provider = OidcProvider(
        issuer=issuer, client_id=OIDC_CLIENT_ID, client_secret=secret,
        redirect_uris=redirect_uris, post_logout_redirect_uris=post_logout,
        accounts=dict(E2E_ACCOUNTS), process=process, log_file=log_file,
    )
    yield provider
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


# --- The portal as a real server ---------------------------------------------------------------


@dataclass
class LivePortal:
    backend: str
    base_url: str
    settings: Settings
    server: uvicorn.Server = field(repr=False)
    thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=5)


class LivePortals:
    """Runs one portal server at a time on ``port``: a new database per start."""

    def __init__(self, port: int, provider: OidcProvider, root: Path,
                 new_postgres_url: Callable[[], str]) -> None:
        self.port = port
        self.provider = provider
        self.root = root
        self.new_postgres_url = new_postgres_url
        self.current: LivePortal | None = None
        self.starts = 0

    def get(self, backend: str = "sqlite") -> LivePortal:
        """The running server of that backend, started when there is none."""
        if self.current is not None and self.current.backend == backend:
            return self.current
        return self.fresh(backend)

    def fresh(self, backend: str = "sqlite") -> LivePortal:
        """A new server on a new, migrated and seeded database."""
        self.stop()
        self.starts += 1
        data_dir = self.root / f"portal-{self.starts}-{backend}"
        data_dir.mkdir()
        if backend == "sqlite":
            database_url = f"sqlite:///{(data_dir / 'portal.db').as_posix()}"
        else:
            database_url = self.new_postgres_url()
        providers_file = data_dir / "oidc-providers.json"
        providers_file.write_text(json.dumps([{
            "id": OIDC_PROVIDER_ID,
            "name": "E2E Agency SSO",
            "issuer": self.provider.issuer,
            "client_id": self.provider.client_id,
            "client_secret_env": OIDC_SECRET_ENV,
            "groups_claim": "groups",
            "organization_claim": "organization", "scope": "openid email profile groups",
        }], indent=2))
        base_url = f"http://127.0.0.1:{self.port}"
        settings = Settings(
            env="test", database_url=database_url, data_dir=data_dir, base_url=base_url,
            host="127.0.0.1", port=self.port, dev_idp=True, oidc_providers_file=providers_file,
            # Every test comes from 127.0.0.1: no waiting for the sign-in rate limit (that it
            # works is tested in tests/e2e/test_app_skeleton.py).
            login_rate_limit=BROWSER_LOGIN_RATE_LIMIT,
        )
        engine = make_engine(settings)
        try:
            migrate.upgrade(engine)
            factory = make_session_factory(engine)
            vault = Services.build(settings, factory).vault
            with factory.begin() as session:
                seed_demo(session, issuer=f"{base_url}/dev-idp", vault=vault)
        finally:
            engine.dispose()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
            access_log=False, lifespan="on", loop="asyncio", http="h11", ws="none",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"portal-{backend}", daemon=True)
        thread.start()
        portal = LivePortal(backend=backend, base_url=base_url, settings=settings,
                            server=server, thread=thread)
        self.current = portal
        self._wait_healthy(portal)
        return portal

    def _wait_healthy(self, portal: LivePortal) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        problem = "not started"
        while time.monotonic() < deadline:
            if not portal.thread.is_alive():
                problem = "the server thread ended (see the captured log)"
                break
            try:
                response = httpx.get(f"{portal.base_url}/healthz", timeout=2)
            except httpx.TransportError as exc:
                problem = repr(exc)
            else:
                if response.status_code == 200:
                    return
                problem = f"/healthz {response.status_code}: {response.text}"
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the live portal did not become healthy: {problem}")

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="session")
def live_portals(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    portal_port: int,
    oidc_provider: OidcProvider,
) -> Iterator[LivePortals]:
    """The factory of live portal servers (the OIDC client secret is in the environment)."""

    def new_postgres_url() -> str:
        return str(request.getfixturevalue("postgres_databases").create())

    previous = os.environ.get(OIDC_SECRET_ENV)
    os.environ[OIDC_SECRET_ENV] = oidc_provider.client_secret
    portals = LivePortals(portal_port, oidc_provider, tmp_path_factory.mktemp("live-portal"),
                          new_postgres_url)
    try:
        yield portals
    finally:
        portals.stop()
        if previous is None:
            os.environ.pop(OIDC_SECRET_ENV, None)
        else:
            os.environ[OIDC_SECRET_ENV] = previous


@pytest.fixture
def live_portal_server(request: pytest.FixtureRequest, live_portals: LivePortals) -> LivePortal:
    """The running portal: on SQLite, or on each `backend` when the test asks for it."""
    backend = "sqlite"
    if "backend" in request.fixturenames:
        backend = str(request.getfixturevalue("backend"))
    if backend == "postgresql":
        # Skips (or fails when CI=true) before anything starts if PostgreSQL is unreachable.
        request.getfixturevalue("postgres_databases")
    return live_portals.get(backend)


@pytest.fixture
def live_portal(live_portal_server: LivePortal) -> str:
    """The base URL of the running portal."""
    return live_portal_server.base_url


# --- Signing in as a demo persona ------------------------------------------------------------

# Sessions made by dev_sign_in, reused by later tests of the same live portal (a sign-in is
# five requests and three page loads). Keyed by (portal base URL, its data directory,
# persona): a fresh portal has a new data directory, and a session that no longer works is
# replaced.
_SESSIONS: dict[tuple[str, str, str], list[Any]] = {}


def dev_sign_in(page: Any, portal: str, persona: str) -> None:
    """Through the development provider, exactly as a person would (plain links and forms)."""
    response = page.goto(f"{portal}/auth/login")
    assert response is not None and response.status == 200, (
        f"/auth/login answered {response and response.status}")
    page.get_by_role("link", name="Sign in with Development sign-in (demo personas)").click()
    page.get_by_role("button", name=f"Sign in as {persona}", exact=True).click()
    # Staff land on their caseload; compliance officers on the console; org admins on /admin.
    page.wait_for_url(re.compile(rf"^{re.escape(portal)}/(staff|compliance/audit|admin)$"))


def signed_in(page: Any, server: LivePortal, persona: str, home: str = "/staff") -> None:
    """Signed in as the persona and on ``home``: a session of an earlier test, or a new one."""
    url = server.base_url + home
    key = (server.base_url, str(server.settings.data_dir), persona)
    cookies = _SESSIONS.get(key)
    if cookies is not None:
        page.context.add_cookies(cookies)
        response = page.goto(url)
        if response is not None and response.status == 200 and page.url == url:
            return
        page.context.clear_cookies()
    dev_sign_in(page, server.base_url, persona)
    _SESSIONS[key] = page.context.cookies()
    if page.url != url:
        page.goto(url)


# --- Accessibility -----------------------------------------------------------------------------

SERIOUS_IMPACTS = ("serious", "critical")


def axe_violations(page: Any, *, context: str | None = None) -> list[dict[str, Any]]:
    """Run axe-core on the page (all its default rules); the serious or critical violations.

    The script is evaluated through the DevTools protocol, which the page's
    Content-Security-Policy (`script-src 'self'`) does not block, so pages are checked under
    their real policy: no `bypass_csp`, and CSP mistakes still show in the browser tests.
    """
    if not AXE_SCRIPT.exists():
        _tool_missing("node_modules/axe-core is missing")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8") + "\n;undefined")
    results: dict[str, Any] = page.evaluate(
        """async (context) => await window.axe.run(context || document,
                                                   {resultTypes: ["violations"]})""",
        context,
    )
    return [v for v in results["violations"] if v.get("impact") in SERIOUS_IMPACTS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(f"    {' > '.join(str(t) for t in node['target'])}"
                     for node in violation["nodes"])
    return "\n".join(lines)


def assert_accessible(page: Any, *, context: str | None = None) -> None:
    """Fail listing each serious or critical axe-core violation (rule id, targets)."""
    violations = axe_violations(page, context=context)
    if violations:
        pytest.fail(f"axe-core found serious or critical violations on {page.url}:\n"
                    + describe_violations(violations), pytrace=False)


@pytest.fixture(name="axe")
def _axe_fixture() -> Callable[..., list[dict[str, Any]]]:
    """``axe(page, context=None)``: the serious or critical violations on the page."""
    return axe_violations


@pytest.fixture(name="assert_accessible")
def _assert_accessible_fixture() -> Callable[..., None]:
    """``assert_accessible(page, context=None)``: fails listing rule ids and targets."""
    return assert_accessible
