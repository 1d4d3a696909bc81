"""The closed vocabularies of the domain: sectors, roles, data categories, purposes, actions.

Every value that crosses a boundary (policy files, database check constraints, the decision,
the audit log) is one of these. An unknown string is never coerced: callers parse with
``parse_*`` helpers, which raise ``UnknownValue`` so that the decision can fail closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from portal.domain.text import N_


class UnknownValue(ValueError):
    """A string that is not a member of a closed vocabulary."""


class Sector(StrEnum):
    CASE_MANAGEMENT = "case_management"
    SUD_TREATMENT = "sud_treatment"
    MENTAL_HEALTH = "mental_health"
    HEALTH = "health"
    HOUSING = "housing"
    POLICE = "police"
    PROSECUTION = "prosecution"
    COURT = "court"
    PROBATION = "probation"
    # Public defenders and legal aid sit at the table on the participant's side.
    DEFENSE = "defense"

    @property
    def is_justice(self) -> bool:
        return self in JUSTICE_SECTORS


JUSTICE_SECTORS = frozenset({Sector.POLICE, Sector.PROSECUTION, Sector.COURT, Sector.PROBATION})


class Role(StrEnum):
    CASE_MANAGER = "case_manager"
    COUNSELOR = "counselor"
    CLINICIAN = "clinician"
    HOUSING_NAVIGATOR = "housing_navigator"
    POLICE_OFFICER = "police_officer"
    PROSECUTOR = "prosecutor"
    PROBATION_OFFICER = "probation_officer"
    COURT_LIAISON = "court_liaison"
    DEFENDER = "defender"
    COMPLIANCE_OFFICER = "compliance_officer"
    ORG_ADMIN = "org_admin"


class Regime(StrEnum):
    """The body of law that governs a category's disclosure."""

    GENERAL = "general"
    HIPAA = "hipaa"
    HMIS = "hmis"
    PART2 = "42cfr2"
    CJIS = "cjis"


class DataCategory(StrEnum):
    CONTACT = "contact"
    CASE_PLAN = "case_plan"
    PROGRESS = "progress"
    HOUSING = "housing"
    BENEFITS = "benefits"
    HEALTH = "health"
    MENTAL_HEALTH = "mental_health"
    SUD_TREATMENT = "sud_treatment"
    JUSTICE = "justice"

    @property
    def info(self) -> CategoryInfo:
        return CATEGORY_INFO[self]


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    label: str
    # HL7 v3 Confidentiality (N normal, R restricted, V very restricted) and
    # ActInformationSensitivityPolicy codes (ETH substance abuse, SUD substance use disorder,
    # PSY psychiatry, MH mental health, DEMO demographics).
    confidentiality: str
    sensitivity: tuple[str, ...]
    regime: Regime


# Labels in English, translated where a page shows them (N_).
CATEGORY_INFO: dict[DataCategory, CategoryInfo] = {
    DataCategory.CONTACT: CategoryInfo(N_("Contact details"), "N", ("DEMO",), Regime.GENERAL),
    DataCategory.CASE_PLAN: CategoryInfo(N_("Case plan"), "R", (), Regime.GENERAL),
    DataCategory.PROGRESS: CategoryInfo(N_("Engagement and progress"), "R", (), Regime.GENERAL),
    DataCategory.HOUSING: CategoryInfo(N_("Housing"), "R", (), Regime.HMIS),
    DataCategory.BENEFITS: CategoryInfo(N_("Benefits"), "R", (), Regime.GENERAL),
    DataCategory.HEALTH: CategoryInfo(N_("Physical health"), "R", (), Regime.HIPAA),
    DataCategory.MENTAL_HEALTH: CategoryInfo(N_("Mental health"), "R", ("PSY", "MH"),
                                             Regime.HIPAA),
    DataCategory.SUD_TREATMENT: CategoryInfo(
        N_("Substance use treatment"), "V", ("ETH", "SUD"), Regime.PART2
    ),
    DataCategory.JUSTICE: CategoryInfo(N_("Justice involvement"), "R", (), Regime.CJIS),
}

# The Golden Rule: justice partners never see health detail of any kind.
HEALTH_CATEGORIES = frozenset(
    {DataCategory.HEALTH, DataCategory.MENTAL_HEALTH, DataCategory.SUD_TREATMENT}
)
PART2_CATEGORIES = frozenset({DataCategory.SUD_TREATMENT})


class Purpose(StrEnum):
    """HL7 v3 ActReason purposes of use, plus one local code for 42 CFR 2.35 monitoring."""

    TREAT = "TREAT"  # treatment
    CAREMGT = "CAREMGT"  # care management / LEAD care coordination
    HOPERAT = "HOPERAT"  # healthcare operations (audit, quality)
    ETREAT = "ETREAT"  # emergency treatment (break-glass, 42 CFR 2.51)
    # Local code: a justice agency monitoring progress in treatment that it made a condition
    # of disposition or release (42 CFR 2.35).
    LEADMON = "LEADMON"


PURPOSE_LABELS: dict[Purpose, str] = {
    Purpose.TREAT: "treatment",
    Purpose.CAREMGT: "LEAD care coordination",
    Purpose.HOPERAT: "program operations and oversight",
    Purpose.ETREAT: "a medical emergency",
    Purpose.LEADMON: "monitoring progress required by a court or probation",
}


class Action(StrEnum):
    VIEW = "view"
    CREATE = "create"
    EXPORT = "export"


E = TypeVar("E", bound=StrEnum)


def parse(enum: type[E], value: object) -> E:
    """Return ``enum(value)`` or raise ``UnknownValue`` naming the vocabulary."""
    if isinstance(value, enum):
        return value
    try:
        return enum(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise UnknownValue(f"unknown {enum.__name__}: {value!r}") from exc


class ReferralPathway(StrEnum):
    ARREST_DIVERSION = "arrest_diversion"
    SOCIAL_CONTACT = "social_contact"


class ParticipantStatus(StrEnum):
    REFERRED = "referred"
    ENROLLED = "enrolled"
    EXITED = "exited"


class ReferralStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class GoalStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    ACHIEVED = "achieved"
    CLOSED = "closed"


class GoalDomain(StrEnum):
    """What a case-plan goal is about; its details are filed under ``category``."""

    SHELTER = "shelter"
    HOUSING = "housing"
    FOOD = "food"
    UTILITIES = "utilities"
    TREATMENT = "treatment"
    MENTAL_HEALTH = "mental_health"
    HEALTH = "health"
    BENEFITS = "benefits"
    INCOME = "income"
    LEGAL = "legal"

    @property
    def category(self) -> DataCategory:
        return GOAL_DETAIL_CATEGORY[self]


GOAL_DETAIL_CATEGORY: dict[GoalDomain, DataCategory] = {
    GoalDomain.SHELTER: DataCategory.HOUSING,
    GoalDomain.HOUSING: DataCategory.HOUSING,
    GoalDomain.FOOD: DataCategory.BENEFITS,
    GoalDomain.UTILITIES: DataCategory.BENEFITS,
    GoalDomain.TREATMENT: DataCategory.SUD_TREATMENT,
    GoalDomain.MENTAL_HEALTH: DataCategory.MENTAL_HEALTH,
    GoalDomain.HEALTH: DataCategory.HEALTH,
    GoalDomain.BENEFITS: DataCategory.BENEFITS,
    GoalDomain.INCOME: DataCategory.BENEFITS,
    GoalDomain.LEGAL: DataCategory.JUSTICE,
}


class StaffStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class BreakGlassReview(StrEnum):
    PENDING = "pending"
    JUSTIFIED = "justified"
    NOT_JUSTIFIED = "not_justified"


class Language(StrEnum):
    EN = "en"
    ES = "es"
