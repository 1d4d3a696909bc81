"""Truth table of the role policy in policies/: every row, the important absences, the Golden Rule.

``expected_allowed`` restates policies/README.md in Python, independently of policy.csv, so an
edit to the policy file that is not also made here (and reviewed) fails the exhaustive test.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.decision import Actor, Organization
from portal.domain.permissions import Permission, may
from portal.domain.ports import AUDIT_LOG, BREAK_GLASS, CONSENT, PolicyVerdict, RolePolicy
from portal.domain.vocabulary import (
    HEALTH_CATEGORIES,
    JUSTICE_SECTORS,
    Action,
    DataCategory,
    Purpose,
    Role,
    Sector,
)
from portal.policy import (
    CasbinRolePolicy,
    PolicyFileError,
    default_policies_dir,
    load_role_mapping,
    map_groups,
)

POLICIES = default_policies_dir()
POLICY_CSV = POLICIES / "policy.csv"

CATEGORIES = frozenset(category.value for category in DataCategory)
HEALTH = frozenset(category.value for category in HEALTH_CATEGORIES)
JUSTICE_DATA = DataCategory.JUSTICE.value
GENERAL = CATEGORIES - HEALTH - {JUSTICE_DATA}
RESOURCES = sorted(CATEGORIES | {AUDIT_LOG, BREAK_GLASS, CONSENT})

# Which roles exist in which sector (DESIGN.md section 3); every sector also has these two.
EVERY_SECTOR_ROLES = frozenset({Role.ORG_ADMIN, Role.COMPLIANCE_OFFICER})
SECTOR_ROLES: dict[Sector, frozenset[Role]] = {
    Sector.CASE_MANAGEMENT: frozenset({Role.CASE_MANAGER}),
    Sector.SUD_TREATMENT: frozenset({Role.COUNSELOR, Role.CLINICIAN}),
    Sector.MENTAL_HEALTH: frozenset({Role.CLINICIAN, Role.CASE_MANAGER}),
    Sector.HEALTH: frozenset({Role.CLINICIAN}),
    Sector.HOUSING: frozenset({Role.HOUSING_NAVIGATOR, Role.CASE_MANAGER}),
    Sector.POLICE: frozenset({Role.POLICE_OFFICER}),
    Sector.PROSECUTION: frozenset({Role.PROSECUTOR}),
    Sector.COURT: frozenset({Role.COURT_LIAISON}),
    Sector.PROBATION: frozenset({Role.PROBATION_OFFICER}),
    Sector.DEFENSE: frozenset({Role.DEFENDER}),
}
JUSTICE_PARTNER_ROLES = frozenset(
    {Role.POLICE_OFFICER, Role.PROSECUTOR, Role.COURT_LIAISON, Role.PROBATION_OFFICER}
)

V, C, X = Action.VIEW, Action.CREATE, Action.EXPORT


def roles_in(sector: Sector) -> frozenset[Role]:
    return SECTOR_ROLES[sector] | EVERY_SECTOR_ROLES


def expected_allowed(
    sector: Sector, role: Role, resource: str, action: Action, purpose: Purpose
) -> bool:
    """policies/README.md "The rules, in words", as code."""
    if role not in roles_in(sector):
        return False
    # The Golden Rule, and its defense counterpart: denials that no allowance overrides.
    if sector in JUSTICE_SECTORS and (resource in HEALTH or resource == BREAK_GLASS):
        return False
    if sector is Sector.DEFENSE and resource in HEALTH:
        return False
    emergency = purpose is Purpose.ETREAT and (
        (resource == BREAK_GLASS and action is C) or (resource in HEALTH and action is V)
    )
    if role is Role.CASE_MANAGER:
        return emergency or (
            purpose is Purpose.CAREMGT
            and (resource in CATEGORIES or (resource == CONSENT and action in (V, C)))
        )
    if role in (Role.COUNSELOR, Role.CLINICIAN):
        return (
            emergency
            or (
                purpose in (Purpose.TREAT, Purpose.CAREMGT)
                and action in (V, C)
                and resource in GENERAL | HEALTH
            )
            or (purpose is Purpose.CAREMGT and action is V and resource == JUSTICE_DATA)
        )
    if role is Role.HOUSING_NAVIGATOR:
        return purpose is Purpose.CAREMGT and action in (V, C) and resource in GENERAL
    if role in JUSTICE_PARTNER_ROLES:
        return (
            (
                resource == "progress"
                and action is V
                and purpose in (Purpose.CAREMGT, Purpose.LEADMON)
            )
            or (resource == JUSTICE_DATA and action in (V, C) and purpose is Purpose.CAREMGT)
            or (
                role is Role.POLICE_OFFICER
                and resource == "contact"
                and action is C
                and purpose is Purpose.CAREMGT
            )
        )
    if role is Role.DEFENDER:
        return purpose is Purpose.CAREMGT and action is V and resource in GENERAL | {JUSTICE_DATA}
    if role is Role.COMPLIANCE_OFFICER:
        return resource == AUDIT_LOG and action in (V, X) and purpose is Purpose.HOPERAT
    return False  # org_admin: administers staff, sees no participant information


@pytest.fixture(scope="module")
def policy() -> CasbinRolePolicy:
    return CasbinRolePolicy(POLICIES)


# ---- policy.csv, read independently of casbin ------------------------------------------------


@dataclass(frozen=True)
class PolicyFile:
    rules: list[tuple[str, list[str]]]  # (line as written, [sub, obj, act, pur, eft])
    subject_groups: dict[str, set[str]]
    resource_groups: dict[str, set[str]]


def read_policy_file(path: Path) -> PolicyFile:
    rules: list[tuple[str, list[str]]] = []
    subject_groups: dict[str, set[str]] = {}
    resource_groups: dict[str, set[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, *fields = (field.strip() for field in line.split(","))
        if kind == "p":
            rules.append((line, fields))
        elif kind == "g":
            subject_groups.setdefault(fields[1], set()).add(fields[0])
        elif kind == "g2":
            resource_groups.setdefault(fields[1], set()).add(fields[0])
        else:
            pytest.fail(f"unexpected line in {path.name}: {line!r}")
    return PolicyFile(rules, subject_groups, resource_groups)


POLICY_FILE = read_policy_file(POLICY_CSV)


def expand_rule(fields: list[str]) -> Iterator[tuple[Sector, Role, str, str, Purpose]]:
    """Every concrete question a policy row speaks about."""
    sub, obj, act, pur, _ = fields
    subjects = POLICY_FILE.subject_groups.get(sub, {sub})
    resources = POLICY_FILE.resource_groups.get(obj, {obj})
    actions: list[str] = list(Action) if act == "*" else [act]
    purposes = list(Purpose) if pur == "*" else [Purpose(pur)]
    for subject, resource, action, purpose in product(
        sorted(subjects), sorted(resources), actions, purposes
    ):
        sector, _, role = subject.partition(":")
        yield Sector(sector), Role(role), resource, action, purpose


@pytest.mark.parametrize(
    ("line", "fields"), POLICY_FILE.rules, ids=[line for line, _ in POLICY_FILE.rules]
)
def test_every_policy_row_decides_what_it_says(
    policy: CasbinRolePolicy, line: str, fields: list[str]
) -> None:
    effect = fields[4]
    assert effect in ("allow", "deny")
    questions = list(expand_rule(fields))
    assert questions, f"{line!r} covers no concrete question"
    for question in questions:
        verdict = policy.check(*question)
        if effect == "deny":
            assert verdict == PolicyVerdict(allowed=False, rule=line), question
        else:
            # Allowed, and the evidence is a real allow row (possibly a broader one).
            assert verdict.allowed, question
            assert verdict.rule is not None
            assert verdict.rule.endswith(", allow")
            assert verdict.rule in {written for written, _ in POLICY_FILE.rules}


@pytest.mark.parametrize("sector", list(Sector))
@pytest.mark.parametrize("role", list(Role))
def test_whole_truth_table_matches_the_readme(
    policy: CasbinRolePolicy, sector: Sector, role: Role
) -> None:
    wrong = [
        (resource, action.value, purpose.value, verdict.allowed, verdict.rule)
        for resource, action, purpose in product(RESOURCES, Action, Purpose)
        if (verdict := policy.check(sector, role, resource, action, purpose)).allowed
        != expected_allowed(sector, role, resource, action, purpose)
    ]
    assert wrong == []


def expected_permission(sector: Sector, role: Role, permission: Permission) -> bool:
    """policies/README.md "Everything else staff do", as code."""
    if role not in roles_in(sector):
        return False
    case_manager = role is Role.CASE_MANAGER
    cm_agency = case_manager and sector is Sector.CASE_MANAGEMENT
    return {
        Permission.AUDIT_LOG_EXPORT: role is Role.COMPLIANCE_OFFICER,
        Permission.AUDIT_LOG_VIEW: role is Role.COMPLIANCE_OFFICER,
        Permission.BREAK_GLASS_CREATE: case_manager or role in (Role.COUNSELOR, Role.CLINICIAN),
        Permission.CARE_TEAM_MANAGE: cm_agency,
        Permission.CONSENT_CREATE: case_manager,
        Permission.CONSENT_REVOKE: case_manager,
        Permission.CONSENT_SIGN: case_manager,
        Permission.CONSENT_VIEW: case_manager,
        Permission.DISPOSITION_CREATE: role in (Role.COURT_LIAISON, Role.PROSECUTOR),
        Permission.PARTICIPANT_EXIT: cm_agency,
        Permission.REFERRAL_CREATE: role is Role.POLICE_OFFICER,
        Permission.REFERRAL_DECIDE: cm_agency,
        Permission.SIGN_IN_CODE_CREATE: cm_agency,
        Permission.STAFF_MANAGE: role is Role.ORG_ADMIN,
    }[permission]


@pytest.mark.parametrize("sector", list(Sector))
@pytest.mark.parametrize("role", list(Role))
def test_every_permission_matches_the_readme(
    policy: CasbinRolePolicy, sector: Sector, role: Role
) -> None:
    actor = Actor(1, Organization("org", sector), frozenset({role}))
    wrong = [p.value for p in Permission
             if may(policy, actor, p) != expected_permission(sector, role, p)]
    assert wrong == []
    # A permission's row is for its own purpose only.
    for p in Permission:
        for purpose in set(Purpose) - {p.purpose}:
            assert not policy.check(sector, role, p.resource, p.action, purpose).allowed


def test_a_suspended_account_has_no_permission(policy: CasbinRolePolicy) -> None:
    actor = Actor(1, Organization("org", Sector.CASE_MANAGEMENT),
                  frozenset({Role.CASE_MANAGER}), active=False)
    assert [p for p in Permission if may(policy, actor, p)] == []


def test_allow_rows_cite_a_line_of_the_policy_file(policy: CasbinRolePolicy) -> None:
    verdict = policy.check(
        Sector.MENTAL_HEALTH, Role.CASE_MANAGER, "sud_treatment", Action.VIEW, Purpose.CAREMGT
    )
    assert verdict == PolicyVerdict(True, "p, case_managers, category, view, CAREMGT, allow")
    assert verdict.rule in POLICY_CSV.read_text(encoding="utf-8").splitlines()


def test_default_deny_cites_no_rule(policy: CasbinRolePolicy) -> None:
    verdict = policy.check(
        Sector.HOUSING, Role.HOUSING_NAVIGATOR, "justice", Action.VIEW, Purpose.CAREMGT
    )
    assert verdict == PolicyVerdict(False, None)


# ---- the important absences ------------------------------------------------------------------

ALL_PURPOSES = tuple(Purpose)
ALL_ACTIONS = tuple(Action)
ALL_CATEGORIES = tuple(sorted(CATEGORIES))
JUSTICE_SUBJECTS = tuple((s, r) for s in sorted(JUSTICE_SECTORS) for r in sorted(roles_in(s)))


@dataclass(frozen=True)
class Absence:
    what: str
    subjects: tuple[tuple[Sector, Role], ...]
    resources: tuple[str, ...]
    actions: tuple[Action, ...] = ALL_ACTIONS
    purposes: tuple[Purpose, ...] = ALL_PURPOSES


def in_every_sector(role: Role) -> tuple[tuple[Sector, Role], ...]:
    return tuple((sector, role) for sector in Sector)


ABSENCES = [
    Absence(
        "a police officer never sees SUD, mental health or health information",
        ((Sector.POLICE, Role.POLICE_OFFICER),),
        tuple(sorted(HEALTH)),
    ),
    Absence(
        "a probation officer cannot view housing",
        ((Sector.PROBATION, Role.PROBATION_OFFICER),),
        ("housing",),
        (V,),
    ),
    Absence(
        "a compliance officer sees no category of participant information",
        in_every_sector(Role.COMPLIANCE_OFFICER),
        ALL_CATEGORIES,
    ),
    Absence(
        "a housing navigator cannot view SUD treatment",
        ((Sector.HOUSING, Role.HOUSING_NAVIGATOR),),
        ("sud_treatment",),
        (V,),
    ),
    Absence(
        "no emergency purpose for any justice role, on anything",
        JUSTICE_SUBJECTS,
        tuple(RESOURCES),
        purposes=(Purpose.ETREAT,),
    ),
    Absence("no break-glass for any justice role", JUSTICE_SUBJECTS, (BREAK_GLASS,)),
    Absence(
        "an org admin sees no participant information",
        in_every_sector(Role.ORG_ADMIN),
        ALL_CATEGORIES,
    ),
    Absence(
        "an org admin does not read the audit log",
        in_every_sector(Role.ORG_ADMIN),
        (AUDIT_LOG,),
    ),
    Absence(
        "a defender never sees health detail",
        ((Sector.DEFENSE, Role.DEFENDER),),
        tuple(sorted(HEALTH)),
    ),
    Absence(
        "a counselor does not record justice data",
        ((Sector.SUD_TREATMENT, Role.COUNSELOR),),
        (JUSTICE_DATA,),
        (C,),
    ),
    Absence(
        "a case manager does not read the audit log",
        ((Sector.CASE_MANAGEMENT, Role.CASE_MANAGER),),
        (AUDIT_LOG,),
    ),
    Absence(
        "LEADMON monitoring shows justice partners nothing but progress",
        tuple((s, r) for s, r in JUSTICE_SUBJECTS if r in JUSTICE_PARTNER_ROLES),
        tuple(r for r in RESOURCES if r != "progress"),
        purposes=(Purpose.LEADMON,),
    ),
]


@pytest.mark.parametrize("absence", ABSENCES, ids=[a.what for a in ABSENCES])
def test_important_absences(policy: CasbinRolePolicy, absence: Absence) -> None:
    allowed = [
        question
        for question in product(
            absence.subjects, absence.resources, absence.actions, absence.purposes
        )
        if policy.check(question[0][0], question[0][1], *question[1:]).allowed
    ]
    assert allowed == []


def test_golden_rule_exhaustively(policy: CasbinRolePolicy) -> None:
    """Every role in a justice sector x every health category x every action x every purpose."""
    deny_row = "p, justice, health_category, *, *, deny"
    checked = 0
    for sector, role, category, action, purpose in product(
        sorted(JUSTICE_SECTORS), Role, sorted(HEALTH_CATEGORIES), Action, Purpose
    ):
        verdict = policy.check(sector, role, category, action, purpose)
        assert not verdict.allowed, (sector, role, category, action, purpose)
        if role in roles_in(sector):
            # Denied by the explicit Golden Rule row, not merely by absence.
            assert verdict.rule == deny_row
        checked += 1
    assert checked == len(JUSTICE_SECTORS) * len(Role) * 3 * len(Action) * len(Purpose)


def test_justice_group_is_every_role_of_every_justice_sector() -> None:
    expected = {f"{s.value}:{r.value}" for s in JUSTICE_SECTORS for r in roles_in(s)}
    assert POLICY_FILE.subject_groups["justice"] == expected


def copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"\n{text}\n")


def test_golden_rule_survives_a_later_allow(tmp_path: Path) -> None:
    policies = copy_policies(tmp_path)
    append(policies / "policy.csv", "p, justice_partners, category, *, *, allow")
    widened = CasbinRolePolicy(policies)
    for category in sorted(HEALTH_CATEGORIES):
        verdict = widened.check(Sector.POLICE, Role.POLICE_OFFICER, category, V, Purpose.CAREMGT)
        assert verdict == PolicyVerdict(False, "p, justice, health_category, *, *, deny")
    # The added row did load: it now allows what it says outside the Golden Rule.
    assert widened.check(Sector.POLICE, Role.POLICE_OFFICER, "housing", V, Purpose.CAREMGT).allowed


# ---- the adapter -----------------------------------------------------------------------------


def test_satisfies_the_role_policy_protocol() -> None:
    role_policy: RolePolicy = CasbinRolePolicy(POLICIES)
    assert re.fullmatch(r"[0-9a-f]{64}", role_policy.version)
    assert role_policy.check(
        Sector.SUD_TREATMENT, Role.COUNSELOR, "sud_treatment", C, Purpose.TREAT
    ) == PolicyVerdict(True, "p, treatment_staff, health_category, create, TREAT, allow")
    assert role_policy.check(
        Sector.POLICE, Role.POLICE_OFFICER, "mental_health", V, Purpose.LEADMON
    ) == PolicyVerdict(False, "p, justice, health_category, *, *, deny")


def test_check_is_repeatable(policy: CasbinRolePolicy) -> None:
    question = (Sector.COURT, Role.COURT_LIAISON, "progress", V, Purpose.LEADMON)
    first = policy.check(*question)
    assert first == PolicyVerdict(True, "p, justice_partners, progress, view, LEADMON, allow")
    assert policy.check(*question) == first


def test_version_is_stable(policy: CasbinRolePolicy, tmp_path: Path) -> None:
    assert CasbinRolePolicy(POLICIES).version == policy.version
    assert CasbinRolePolicy(copy_policies(tmp_path)).version == policy.version


@pytest.mark.parametrize(
    ("name", "addition"),
    [
        ("model.conf", "# a reviewed comment"),
        ("policy.csv", "# a reviewed comment"),
        ("role_mapping.csv", "lead-extra-case-managers,case_manager"),
        ("accounting.csv", "record:view,no_consent"),
    ],
)
def test_version_changes_when_a_policy_file_changes(
    policy: CasbinRolePolicy, tmp_path: Path, name: str, addition: str
) -> None:
    policies = copy_policies(tmp_path)
    append(policies / name, addition)
    assert CasbinRolePolicy(policies).version != policy.version


def test_default_policies_dir_is_the_repository_policies_folder() -> None:
    repo_root = Path(__file__).resolve().parents[3]
    assert default_policies_dir() == repo_root / "policies"
    for name in ("model.conf", "policy.csv", "role_mapping.csv", "accounting.csv", "README.md"):
        assert (default_policies_dir() / name).is_file()


GARBAGE_QUESTIONS: list[tuple[object, object, object, object, object]] = [
    ("POLICE", Role.POLICE_OFFICER, "progress", V, Purpose.CAREMGT),
    (Sector.POLICE, "police_officer ", "progress", V, Purpose.CAREMGT),
    (Sector.POLICE, "justice_partners", "progress", V, Purpose.CAREMGT),
    ("police:police_officer", Role.POLICE_OFFICER, "progress", V, Purpose.CAREMGT),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "category", V, Purpose.CAREMGT),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "health_category", V, Purpose.CAREMGT),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "*", V, Purpose.CAREMGT),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "contact", "*", Purpose.CAREMGT),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "contact", V, "*"),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "contact", "VIEW", Purpose.CAREMGT),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "contact", V, "caremgt"),
    (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, ["contact"], V, Purpose.CAREMGT),
    (None, None, None, None, None),
    (1, 2, 3, 4, 5),
]


@pytest.mark.parametrize("question", GARBAGE_QUESTIONS, ids=repr)
def test_garbage_is_denied_without_raising(
    policy: CasbinRolePolicy, question: tuple[object, object, object, object, object]
) -> None:
    assert policy.check(*question) == PolicyVerdict(False, None)  # type: ignore[arg-type]


def test_plain_strings_from_the_vocabulary_are_accepted(policy: CasbinRolePolicy) -> None:
    verdict = policy.check("case_management", "case_manager", "contact", "view", "CAREMGT")  # type: ignore[arg-type]
    assert verdict.allowed


def vocabulary_or_garbage(values: Iterable[str]) -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from(sorted(values)),
        st.text(max_size=30),
        st.none(),
        st.integers(),
        st.lists(st.text(max_size=5), max_size=2),
    )


@given(
    sector=vocabulary_or_garbage(s.value for s in Sector),
    role=vocabulary_or_garbage(r.value for r in Role),
    resource=vocabulary_or_garbage([*RESOURCES, "category", "justice_partners", "*"]),
    action=vocabulary_or_garbage([*(a.value for a in Action), "*"]),
    purpose=vocabulary_or_garbage([*(p.value for p in Purpose), "*"]),
)
def test_any_input_gets_the_expected_verdict_and_never_raises(
    policy: CasbinRolePolicy,
    sector: object,
    role: object,
    resource: object,
    action: object,
    purpose: object,
) -> None:
    verdict = policy.check(sector, role, resource, action, purpose)  # type: ignore[arg-type]
    if (
        isinstance(sector, str)
        and sector in {s.value for s in Sector}
        and isinstance(role, str)
        and role in {r.value for r in Role}
        and isinstance(resource, str)
        and resource in RESOURCES
        and isinstance(action, str)
        and action in {a.value for a in Action}
        and isinstance(purpose, str)
        and purpose in {p.value for p in Purpose}
    ):
        expected = expected_allowed(
            Sector(sector), Role(role), resource, Action(action), Purpose(purpose)
        )
    else:
        expected = False
    assert verdict.allowed is expected


class _BrokenEnforcer:
    def enforce_ex(self, *request: str) -> tuple[bool, list[str]]:
        raise RuntimeError("invalid policy size")


def test_an_engine_error_is_a_deny(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = CasbinRolePolicy(POLICIES)
    monkeypatch.setattr(broken, "_enforcer", _BrokenEnforcer())
    question = (Sector.CASE_MANAGEMENT, Role.CASE_MANAGER, "contact", V, Purpose.CAREMGT)
    assert broken.check(*question) == PolicyVerdict(False, None)


@pytest.mark.parametrize(
    "line",
    [
        "p, justice, sud_treatmnet, *, *, deny",  # misspelt resource: would stop denying
        "p, justise, health_category, *, *, deny",  # misspelt group
        "p, case_managers, contact, read, CAREMGT, allow",
        "p, case_managers, contact, view, CAREMNT, allow",
        "p, case_managers, contact, view, CAREMGT, permit",
        "p, case_managers, contact, view, CAREMGT",
        "g2, sud_treatment, contact",  # a resource used as a group widens every contact grant
        "g2, sud_treatment, unused_group",
        "g, police:org_admin, justce",  # leaves justice without saying so
        "g, police:detective, justice",
    ],
)
def test_a_malformed_policy_line_refuses_to_load(tmp_path: Path, line: str) -> None:
    policies = copy_policies(tmp_path)
    append(policies / "policy.csv", line)
    with pytest.raises(PolicyFileError):
        CasbinRolePolicy(policies)


# ---- role mapping ----------------------------------------------------------------------------


def test_role_mapping_names_every_role() -> None:
    mapping = load_role_mapping(POLICIES / "role_mapping.csv")
    assert mapping["lead-case-managers"] is Role.CASE_MANAGER
    assert mapping["lead-police"] is Role.POLICE_OFFICER
    assert mapping["lead-compliance"] is Role.COMPLIANCE_OFFICER
    assert set(mapping.values()) == set(Role)
    assert len(mapping) == len(Role)


def test_map_groups_ignores_unknown_groups() -> None:
    mapping = load_role_mapping(POLICIES / "role_mapping.csv")
    groups = ["lead-counselors", "staff", "lead-clinicians", "lead-counselors", "LEAD-POLICE"]
    assert map_groups(mapping, groups) == frozenset({Role.COUNSELOR, Role.CLINICIAN})
    assert map_groups(mapping, []) == frozenset()
    assert map_groups(mapping, iter(["lead-defenders"])) == frozenset({Role.DEFENDER})


def test_map_groups_takes_a_bare_string_as_one_group() -> None:
    mapping = {"lead-police": Role.POLICE_OFFICER, "l": Role.ORG_ADMIN}
    assert map_groups(mapping, "lead-police") == frozenset({Role.POLICE_OFFICER})


def test_role_mapping_trims_spaces_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "role_mapping.csv"
    path.write_text("group, role\n\n lead-a , counselor\n", encoding="utf-8")
    assert load_role_mapping(path) == {"lead-a": Role.COUNSELOR}


@pytest.mark.parametrize(
    "text",
    [
        "lead-a,counselor\n",  # no header
        "group,role\nlead-a,therapist\n",  # unknown role
        "group,role\nlead-a,counselor\nlead-a,clinician\n",  # one group, two roles
        "group,role\nlead-a,counselor,extra\n",
        "group,role\n,counselor\n",
        "",
    ],
)
def test_a_broken_role_mapping_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "role_mapping.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyFileError):
        load_role_mapping(path)


def test_a_broken_role_mapping_stops_the_policy_loading(tmp_path: Path) -> None:
    policies = copy_policies(tmp_path)
    append(policies / "role_mapping.csv", "lead-detectives,detective")
    with pytest.raises(PolicyFileError):
        CasbinRolePolicy(policies)


def test_role_mapping_file_is_a_two_column_csv() -> None:
    with (POLICIES / "role_mapping.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["group", "role"]
    assert all(len(row) == 2 for row in rows)


# --- What participants are told of refused attempts (accounting.csv) ---------------------


def test_participants_are_told_of_refused_emergency_access_and_attempts_from_outside(
        policy: CasbinRolePolicy) -> None:
    assert ("break_glass:grant:create", "no_role_permission") in policy.refusals_shown
    assert ("participant:view", "not_on_care_team") in policy.refusals_shown
    # A withheld category on a care-team member's page is the consent working: not listed.
    assert not {row for row in policy.refusals_shown if row[0] == "record:view"}


@pytest.mark.parametrize(("text", "problem"), [
    ("action;reason\n", "first row must be 'action,reason'"),
    ("action,reason\nrecord:peek,no_consent\n", "unknown AuditAction: 'record:peek'"),
    ("action,reason\nrecord:view,because\n", "unknown Reason: 'because'"),
    ("action,reason\nrecord:view\n", "expected 'action,reason'"),
    ("action,reason\nrecord:view,no_consent\n# again\nrecord:view,no_consent\n",
     "listed twice"),
])
def test_a_broken_accounting_file_is_refused_at_load(tmp_path: Path, text: str,
                                                     problem: str) -> None:
    policies = copy_policies(tmp_path)
    (policies / "accounting.csv").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyFileError, match=re.escape(problem)):
        CasbinRolePolicy(policies)


def test_participants_are_told_the_names_of_the_people_who_care_for_them_only(
        policy: CasbinRolePolicy) -> None:
    named = policy.named_recipients
    assert ("case_management", "case_manager") in named
    assert ("housing", "housing_navigator") in named and ("defense", "defender") in named
    assert all(Role(role) in SECTOR_ROLES[Sector(sector)] for sector, role in named)
    # Justice staff, administrators and compliance officers are named by agency and role.
    assert not {row for row in named if Sector(row[0]).is_justice}
    assert not {row for row in named if row[1] in ("org_admin", "compliance_officer")}


@pytest.mark.parametrize(("text", "problem"), [
    ("role,sector\n", "first row must be 'sector,role'"),
    ("sector,role\nhousing,janitor\n", "unknown Role: 'janitor'"),
    ("sector,role\nbakery,case_manager\n", "unknown Sector: 'bakery'"),
    ("sector,role\nhousing\n", "expected 'sector,role'"),
    ("sector,role\nhousing,case_manager\nhousing,case_manager\n", "listed twice"),
])
def test_a_broken_named_recipients_file_is_refused_at_load(tmp_path: Path, text: str,
                                                           problem: str) -> None:
    policies = copy_policies(tmp_path)
    (policies / "named_recipients.csv").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyFileError, match=re.escape(problem)):
        CasbinRolePolicy(policies)


MODEL_EDITS = {
    "allow only: deny rows would stop winning": (
        "e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
        "e = some(where (p.eft == allow))", "deny-override"),
    "a matcher that allows everything": (
        "m = g(r.sub, p.sub) && g2(r.obj, p.obj) && (p.act == \"*\" || r.act == p.act) "
        "&& (p.pur == \"*\" || r.pur == p.pur)", "m = true", "matcher"),
    "a matcher that ignores the purpose": (
        " && (p.pur == \"*\" || r.pur == p.pur)", "", "matcher"),
}


@pytest.mark.parametrize("edit", list(MODEL_EDITS), ids=list(MODEL_EDITS))
def test_a_model_of_another_shape_is_refused(tmp_path: Path, edit: str) -> None:
    old, new, problem = MODEL_EDITS[edit]
    target = copy_policies(tmp_path)
    model = target / "model.conf"
    text = model.read_text(encoding="utf-8")
    assert old in text
    model.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(PolicyFileError, match=problem):
        CasbinRolePolicy(target)


def test_the_portal_does_not_start_on_a_refused_model(tmp_path: Path) -> None:
    from portal.config import Settings
    from portal.kernel.wiring import Services

    target = copy_policies(tmp_path)
    model = target / "model.conf"
    model.write_text(model.read_text(encoding="utf-8").replace(
        "&& !some(where (p.eft == deny))", ""), encoding="utf-8")
    with pytest.raises(PolicyFileError, match="deny-override"):
        Services.build(Settings(env="test", database_url=f"sqlite:///{tmp_path}/x.db",
                                data_dir=tmp_path, policies_dir=target))


def test_the_policy_engine_does_not_log_each_decision(caplog: pytest.LogCaptureFixture) -> None:
    """Decisions are in the audit log; pycasbin's per-load and per-enforce lines are not kept
    (issue 14: hundreds of lines a minute, and a cost on every request)."""
    with caplog.at_level(logging.DEBUG):
        policy = CasbinRolePolicy(POLICIES)
        policy.check(Sector.POLICE, Role.POLICE_OFFICER, "sud_treatment", "view",
                     Purpose.CAREMGT)
        policy._enforcer.enforce("police:police_officer", "sud_treatment", "view", "CAREMGT")
    assert not [r for r in caplog.records if r.name.startswith("casbin")]
