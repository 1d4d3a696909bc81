"""Consent directives (modelled on FHIR Consent) and their 42 CFR Part 2 rules."""

from __future__ import annotations

from enum import StrEnum


class ConsentKind(StrEnum):
    ROI = "roi"  # multi-party release of information (non-Part 2)
    PART2 = "part2"  # 42 CFR 2.31 written consent naming recipients
    PART2_TPO = "part2_tpo"  # 42 CFR 2.33(b) single consent for treatment, payment, operations
    PART2_CRIMINAL_JUSTICE = "part2_criminal_justice"  # 42 CFR 2.35

    @property
    def is_part2(self) -> bool:
        return self is not ConsentKind.ROI


class ConsentStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    ENTERED_IN_ERROR = "entered_in_error"


class ProvisionEffect(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class SignatureMethod(StrEnum):
    TYPED = "typed"  # typed full name with explicit agreement, on the device
    DRAWN = "drawn"  # typed name plus a drawn signature
    WET_INK_SCAN = "wet_ink_scan"  # uploaded scan of a signed paper form


class SignerRelation(StrEnum):
    SELF = "self"
    GUARDIAN = "guardian"  # minor's parent or guardian
    AUTHORIZED_REPRESENTATIVE = "authorized_representative"
