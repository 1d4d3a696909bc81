"""Role policy backed by casbin: loads ``policies/`` and answers RolePolicy checks, failing closed.

The model (``model.conf``) and rows (``policy.csv``) are explained in ``policies/README.md``.
A request subject is ``"<sector>:<role>"``; resources are the data categories plus
``audit_log``, ``break_glass`` and ``consent``. The policy is immutable once loaded, so verdicts
are cached per (sector, role, resource, action, purpose); only requests made entirely of known
vocabulary are cached, which bounds the cache to the finite vocabulary.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# pycasbin ships no type information; pyproject may also silence this, hence unused-ignore.
import casbin  # type: ignore[import-untyped,unused-ignore]

from portal.domain.audit import AuditAction
from portal.domain.decision import Reason
from portal.domain.permissions import PERMISSION_ACTIONS, PERMISSION_RESOURCES
from portal.domain.ports import AUDIT_LOG, BREAK_GLASS, CONSENT, PolicyVerdict
from portal.domain.vocabulary import (
    Action,
    DataCategory,
    Purpose,
    Role,
    Sector,
    UnknownValue,
    parse,
)

# pycasbin logs every policy load at INFO and every enforce at INFO (allowed) or WARNING
# (denied): hundreds of lines a minute, and a cost on every request. Every decision is in the
# audit log already, so only its errors are logged.
logging.getLogger("casbin").setLevel(logging.ERROR)

MODEL_FILE = "model.conf"
POLICY_FILE = "policy.csv"
ROLE_MAPPING_FILE = "role_mapping.csv"
ACCOUNTING_FILE = "accounting.csv"
NAMED_RECIPIENTS_FILE = "named_recipients.csv"
# Every file that shapes a decision or what a participant is told of it; all of them go into
# the version hash.
POLICY_FILES = (MODEL_FILE, POLICY_FILE, ROLE_MAPPING_FILE, ACCOUNTING_FILE,
                NAMED_RECIPIENTS_FILE)

# Every resource the role policy speaks about: the data categories (decide()) and the
# resources of the other permissions (portal.domain.permissions).
RESOURCES: frozenset[str] = frozenset(
    {category.value for category in DataCategory} | {AUDIT_LOG, BREAK_GLASS, CONSENT}
    | PERMISSION_RESOURCES
)
# Every action: those on data categories and those of the other permissions.
ACTIONS: frozenset[str] = frozenset({a.value for a in Action} | PERMISSION_ACTIONS)
SECTOR_NAMES: frozenset[str] = frozenset(sector.value for sector in Sector)
ROLE_NAMES: frozenset[str] = frozenset(role.value for role in Role)
WILDCARD = "*"
EFFECTS = frozenset({"allow", "deny"})
_DENY = PolicyVerdict(allowed=False, rule=None)


class PolicyFileError(ValueError):
    """A policy file is malformed or names something outside the vocabulary."""


# The shape of model.conf the portal is built for, as casbin reads it. Another effect (allow
# only: deny rows would stop winning) or matcher (``true``: every request allowed) would load
# without complaint and serve data, so anything else is refused at start-up.
MODEL_SHAPE = {
    ("r", "r"): "sub, obj, act, pur",
    ("p", "p"): "sub, obj, act, pur, eft",
    ("g", "g"): "_, _",
    ("g", "g2"): "_, _",
    ("e", "e"): "some(where (p_eft == allow)) && !some(where (p_eft == deny))",
    ("m", "m"): 'g(r_sub, p_sub) && g2(r_obj, p_obj) && (p_act == "*" || r_act == p_act) '
                '&& (p_pur == "*" || r_pur == p_pur)',
}


def _validate_model(enforcer: object) -> None:
    model = enforcer.get_model()  # type: ignore[attr-defined]
    loaded = {(sec, key): " ".join(str(assertion.value).split())
              for sec in list(model.keys()) for key, assertion in model[sec].items()}
    for (sec, key), expected in MODEL_SHAPE.items():
        if loaded.get((sec, key)) != expected:
            what = {"e": "the policy effect must be deny-override "
                         "(some allow and no deny)",
                    "m": "the matcher must be the shipped one (subject and resource groups, "
                         "action and purpose with '*')"}.get(sec, f"[{sec}] {key} differs")
            raise PolicyFileError(f"{MODEL_FILE}: {what}; found {loaded.get((sec, key))!r}")
    if set(loaded) != set(MODEL_SHAPE):
        extra = sorted(f"{sec}.{key}" for sec, key in set(loaded) - set(MODEL_SHAPE))
        raise PolicyFileError(f"{MODEL_FILE}: unexpected definitions {extra}")


def default_policies_dir() -> Path:
    """Return ``<repo root>/policies``, the repository root being the parent of ``portal/``."""
    return Path(__file__).resolve().parent.parent.parent / "policies"


def subject_of(sector: Sector, role: Role) -> str:
    """The casbin subject for a role in a sector, e.g. ``police:police_officer``."""
    return f"{sector.value}:{role.value}"


def policy_version(policies_dir: Path) -> str:
    """SHA-256 (hex) over the policy files, in name order.

    Each file contributes ``name NUL length NUL bytes`` so that no two different sets of file
    contents can produce the same input to the hash.
    """
    digest = hashlib.sha256()
    for name in sorted(POLICY_FILES):
        data = (policies_dir / name).read_bytes()
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return digest.hexdigest()


class CasbinRolePolicy:
    """RolePolicy over casbin: default deny, deny overrides allow, never raises on ``check``."""

    def __init__(self, policies_dir: Path) -> None:
        version = policy_version(policies_dir)
        self._enforcer = casbin.Enforcer(
            str(policies_dir / MODEL_FILE), str(policies_dir / POLICY_FILE)
        )
        _validate_model(self._enforcer)
        _validate_rows(self._enforcer)
        # The role mapping is part of the policy: reject a broken one at load time too.
        load_role_mapping(policies_dir / ROLE_MAPPING_FILE)
        # Which refused attempts participants are told about (their accounting of disclosures).
        self.refusals_shown = load_refusals_shown(policies_dir / ACCOUNTING_FILE)
        # Whose name they are told when that person looked (the rest: organization and role).
        self.named_recipients = load_named_recipients(policies_dir / NAMED_RECIPIENTS_FILE)
        if policy_version(policies_dir) != version:
            # The files changed while loading: the version would not describe what was loaded.
            raise PolicyFileError(f"policy files in {policies_dir} changed while loading")
        self._version = version
        self._cache: dict[tuple[object, ...], PolicyVerdict] = {}
        # casbin's enforcer is not documented as thread-safe; a cache miss is rare and cheap.
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return self._version

    def check(
        self, sector: Sector, role: Role, resource: str, action: str, purpose: Purpose
    ) -> PolicyVerdict:
        """The verdict of the role policy; any error or unknown value is a deny (fail closed)."""
        try:
            key = (sector, role, resource, action, purpose)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            verdict = self._decide(sector, role, resource, action, purpose)
            self._cache[key] = verdict
            return verdict
        except Exception:  # noqa: BLE001 - fail closed: a policy engine error must never permit
            return _DENY

    def _decide(
        self, sector: object, role: object, resource: object, action: object, purpose: object
    ) -> PolicyVerdict:
        # Raises UnknownValue on anything outside the vocabulary; check() turns that into a deny
        # (and does not cache it, so arbitrary strings cannot grow the cache).
        subject = subject_of(parse(Sector, sector), parse(Role, role))
        if not isinstance(resource, str) or resource not in RESOURCES:
            raise UnknownValue(f"unknown resource: {resource!r}")
        if not isinstance(action, str) or action not in ACTIONS:
            raise UnknownValue(f"unknown action: {action!r}")
        with self._lock:
            allowed, explain = self._enforcer.enforce_ex(
                subject,
                str(resource),
                str(action),
                parse(Purpose, purpose).value,
            )
        rule = "p, " + ", ".join(explain) if explain else None
        return PolicyVerdict(allowed=allowed is True, rule=rule)


def _validate_rows(enforcer: object) -> None:
    """Reject rows casbin would silently accept but that cannot mean what their author meant.

    A misspelt resource in a deny row would quietly stop denying; a group named like a real
    resource (``g2, sud_treatment, contact``) would widen every grant on that resource; a
    misspelt group in a ``g`` line would quietly take a subject out of its group.
    """
    subject_rows: list[list[str]] = enforcer.get_named_grouping_policy("g")  # type: ignore[attr-defined]
    resource_rows: list[list[str]] = enforcer.get_named_grouping_policy("g2")  # type: ignore[attr-defined]
    rows: list[list[str]] = enforcer.get_policy()  # type: ignore[attr-defined]

    for row in subject_rows:
        _expect(len(row) == 2, "g", row, "needs a subject and a group")
        _expect(_is_subject(row[0]), "g", row, f"{row[0]!r} is not <sector>:<role>")
        _expect(":" not in row[1], "g", row, f"group {row[1]!r} must not contain ':'")
    for row in resource_rows:
        _expect(len(row) == 2, "g2", row, "needs a resource and a group")
        _expect(row[0] in RESOURCES, "g2", row, f"unknown resource {row[0]!r}")
        _expect(row[1] not in RESOURCES, "g2", row, f"group {row[1]!r} is a resource name")

    subject_groups = {row[1] for row in subject_rows}
    resource_groups = {row[1] for row in resource_rows}
    actions = ACTIONS | {WILDCARD}
    purposes = {p.value for p in Purpose} | {WILDCARD}
    for row in rows:
        _expect(len(row) == 5, "p", row, "needs subject, resource, action, purpose, effect")
        sub, obj, act, pur, eft = row
        _expect(_is_subject(sub) or sub in subject_groups, "p", row, f"unknown subject {sub!r}")
        _expect(obj in RESOURCES or obj in resource_groups, "p", row, f"unknown resource {obj!r}")
        _expect(act in actions, "p", row, f"unknown action {act!r}")
        _expect(pur in purposes, "p", row, f"unknown purpose {pur!r}")
        _expect(eft in EFFECTS, "p", row, f"effect must be allow or deny, not {eft!r}")

    # A misspelt group name in a g line defines a new, unused group instead of joining the
    # intended one (a police org_admin silently leaving `justice`): every group must be used.
    used_subjects = {row[0] for row in rows}
    used_resources = {row[1] for row in rows}
    for ptype, grouping, used in (
        ("g", subject_rows, used_subjects),
        ("g2", resource_rows, used_resources),
    ):
        for row in grouping:
            _expect(row[1] in used, ptype, row, f"group {row[1]!r} is named by no p line")


def _is_subject(name: str) -> bool:
    sector, sep, role = name.partition(":")
    return bool(sep) and sector in SECTOR_NAMES and role in ROLE_NAMES


def _expect(condition: bool, ptype: str, row: list[str], problem: str) -> None:
    if not condition:
        raise PolicyFileError(f"{POLICY_FILE}: '{', '.join([ptype, *row])}': {problem}")


def load_role_mapping(path: Path) -> dict[str, Role]:
    """Read ``group,role`` rows (with that header) mapping IdP group names to roles.

    An unknown role or a group listed twice is an error: a mapping mistake must be loud.
    """
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [cell.strip() for cell in header] != ["group", "role"]:
            raise PolicyFileError(f"{path.name}: the first line must be 'group,role'")
        mapping: dict[str, Role] = {}
        for line_number, cells in enumerate(reader, start=2):
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if len(cells) != 2:
                raise PolicyFileError(f"{path.name}:{line_number}: expected 'group,role'")
            group, role_name = (cell.strip() for cell in cells)
            if not group:
                raise PolicyFileError(f"{path.name}:{line_number}: empty group name")
            if group in mapping:
                raise PolicyFileError(f"{path.name}:{line_number}: group {group!r} listed twice")
            try:
                mapping[group] = parse(Role, role_name)
            except UnknownValue as exc:
                raise PolicyFileError(f"{path.name}:{line_number}: {exc}") from exc
    return mapping


def _csv_rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """The data rows of a small policy CSV (``#`` starts a comment line), checked to have
    ``header`` first and that many cells in every row: ``(line number, cells)``."""
    with path.open(newline="", encoding="utf-8") as handle:
        lines = [(n, line) for n, line in enumerate(handle, start=1)
                 if line.strip() and not line.lstrip().startswith("#")]
    spelled = ",".join(header)
    if not lines or tuple(c.strip() for c in lines[0][1].split(",")) != header:
        raise PolicyFileError(f"{path.name}: the first row must be '{spelled}'")
    for line_number, line in lines[1:]:
        cells = [cell.strip() for cell in next(csv.reader([line]))]
        if len(cells) != len(header):
            raise PolicyFileError(f"{path.name}:{line_number}: expected '{spelled}'")
        yield line_number, cells


def _unique_rows(path: Path, header: tuple[str, ...],
                 read: Callable[[list[str]], tuple[str, str]]) -> frozenset[tuple[str, str]]:
    rows: set[tuple[str, str]] = set()
    for line_number, cells in _csv_rows(path, header):
        try:
            row = read(cells)
        except UnknownValue as exc:
            raise PolicyFileError(f"{path.name}:{line_number}: {exc}") from exc
        if row in rows:
            raise PolicyFileError(f"{path.name}:{line_number}: listed twice")
        rows.add(row)
    return frozenset(rows)


def load_refusals_shown(path: Path) -> frozenset[tuple[str, str]]:
    """Read ``action,reason`` rows: the refused attempts, by audited action and reason, that a
    participant is told about."""
    return _unique_rows(path, ("action", "reason"), lambda cells: (
        parse(AuditAction, cells[0]).value, parse(Reason, cells[1]).value))


def load_named_recipients(path: Path) -> frozenset[tuple[str, str]]:
    """Read ``sector,role`` rows: the staff a participant is told the name of when they look
    at the participant's information (everyone else is named by organization and role)."""
    return _unique_rows(path, ("sector", "role"), lambda cells: (
        parse(Sector, cells[0]).value, parse(Role, cells[1]).value))


def map_groups(mapping: dict[str, Role], groups: Iterable[str]) -> frozenset[Role]:
    """The roles granted by the user's IdP groups; groups not in the mapping are ignored.

    A bare string is taken as one group name (some IdPs send a single group unwrapped), never
    as a sequence of one-letter groups.
    """
    if isinstance(groups, str):
        groups = (groups,)
    return frozenset(mapping[group] for group in groups if group in mapping)
