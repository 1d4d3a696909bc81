"""Exports of the whole audit log for compliance (CSV for people, NDJSON of FHIR R4
AuditEvent for systems), each audited before its first line."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from portal.compliance.console import Requester, record_read
from portal.db.audit_chain import AuditLog, iter_events
from portal.domain.audit import (
    DISCLOSING_ACTIONS,
    AuditAction,
    ChainedEvent,
    escape_csv_cell,
    format_time,
)


def _filters_detail(fmt: str, since: datetime | None, until: datetime | None,
                    participant_id: uuid.UUID | None) -> dict[str, Any]:
    return {"format": fmt,
            "since": None if since is None else format_time(since),
            "until": None if until is None else format_time(until),
            "participant_id": None if participant_id is None else str(participant_id)}


CSV_COLUMNS = ("chain", "seq", "occurred_at", "action", "decision", "actor", "actor_user_id",
               "actor_organization", "actor_roles", "session_id", "client_address",
               "participant_id", "category", "record_ids", "purpose", "reasons", "consent_ids",
               "policy_version", "request_id", "detail", "prev_hash", "hash")


def csv_row(event: ChainedEvent) -> list[str]:
    """One event as CSV cells for people: control characters shown, formulas neutralised."""
    cells: list[str] = []
    for name in CSV_COLUMNS:
        value = getattr(event, name)
        if name == "occurred_at":
            text = format_time(value)
        elif name == "detail":
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode() if value else ""
        elif isinstance(value, list | tuple):
            text = " ".join(value)
        else:
            text = "" if value is None else str(value)
        cells.append(escape_csv_cell(text))
    return cells


def export_csv(factory: sessionmaker[Session], log: AuditLog, requester: Requester, *,
               since: datetime | None = None, until: datetime | None = None,
               participant_id: uuid.UUID | None = None) -> Iterator[str]:
    """Stream the log as CSV lines (header first); the export is audited before any line."""
    record_read(factory, log, requester, AuditAction.AUDIT_EXPORT, participant_id=participant_id,
                detail=_filters_detail("csv", since, until, participant_id))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    with factory() as session:
        for event in iter_events(session, since=since, until=until,
                                 participant_id=participant_id):
            yield line(csv_row(event))


# FHIR R4 AuditEvent coding (http://hl7.org/fhir/R4/auditevent.html).
LOCAL_SYSTEM = "urn:lead-portal"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_EVENT_TYPES: dict[str, tuple[str, str, str]] = {
    "auth": (DCM, "110114", "User Authentication"),
    "audit": (DCM, "110101", "Audit Log Used"),
    "break_glass": (DCM, "110113", "Security Alert"),
    "staff": (DCM, "110136", "Security Roles Changed"),
    "crypto": (DCM, "110113", "Security Alert"),
}
_EXPORT = (DCM, "110106", "Export")
_REST = (AUDIT_EVENT_TYPE, "rest", "RESTful Operation")
_CREATE_WORDS = ("create", "add", "enrol", "issue", "sign")
_UPDATE_WORDS = ("update", "revoke", "supersede", "end", "change", "suspend", "reinstate",
                 "review", "decide")


def _fhir_action(action: str) -> str:
    verb = action.rsplit(":", 1)[-1]
    if verb in ("view", "export", "explain", "verify"):
        return "R"
    if verb in _CREATE_WORDS:
        return "C"
    if verb in _UPDATE_WORDS:
        return "U"
    return "E"


def _fhir_outcome(event: ChainedEvent) -> str:
    # 0 success, 4 minor failure (a refusal or failed sign-in), 8 serious failure.
    if event.action == AuditAction.CRYPTO_DECRYPT_FAILURE:
        return "8"
    if event.decision == "deny" or event.action in (AuditAction.AUTH_LOGIN_FAILURE,
                                                     AuditAction.AUTH_LOCKOUT):
        return "4"
    return "0"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def fhir_audit_event(event: ChainedEvent) -> dict[str, Any]:
    """One stored event as a FHIR R4 AuditEvent resource (a plain dict)."""
    scope = event.action.split(":", 1)[0]
    system, code, display = (_EXPORT if event.action.endswith(":export")
                             else _EVENT_TYPES.get(scope, _REST))
    agent: dict[str, Any] = {
        "type": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "IRCP" if event.action in DISCLOSING_ACTIONS else "AUT")]},
        "requestor": True,
    }
    who: dict[str, Any] = {}
    if event.actor_user_id is not None:
        who["identifier"] = {"system": f"{LOCAL_SYSTEM}:staff-user",
                             "value": str(event.actor_user_id)}
    if event.actor:  # FHIR strings may not be empty
        who["display"] = agent["name"] = event.actor
    if who:
        agent["who"] = who
    if any(event.actor_roles):
        agent["role"] = [{"coding": [_coding(f"{LOCAL_SYSTEM}:role", r)], "text": r}
                         for r in event.actor_roles if r]
    if event.session_id:
        agent["altId"] = event.session_id
    if event.client_address:
        agent["network"] = {"address": event.client_address, "type": "2"}  # 2 = IP address
    if event.purpose:
        agent["purposeOfUse"] = [_purpose(event.purpose)]
    agents = [agent]
    if event.actor_organization:
        agents.append({"who": {"identifier": {"system": f"{LOCAL_SYSTEM}:organization",
                                              "value": event.actor_organization}},
                       "requestor": False})
    entities: list[dict[str, Any]] = []
    if event.participant_id is not None:
        entities.append({
            "what": {"identifier": {"system": f"{LOCAL_SYSTEM}:participant",
                                    "value": str(event.participant_id)}},
            "type": _coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1",
                            "Person"),
            "role": _coding("http://terminology.hl7.org/CodeSystem/object-role", "1",
                            "Patient"),
        })
    for record_id in filter(None, event.record_ids):
        entity: dict[str, Any] = {
            "what": {"identifier": {"system": f"{LOCAL_SYSTEM}:record", "value": record_id}},
            "type": _coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2",
                            "System Object"),
            "role": _coding("http://terminology.hl7.org/CodeSystem/object-role", "4",
                            "Domain Resource"),
        }
        if event.category:
            entity["detail"] = [{"type": "category", "valueString": event.category}]
        entities.append(entity)
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"{event.chain}-{event.seq}",
        "type": _coding(system, code, display),
        "subtype": [_coding(f"{LOCAL_SYSTEM}:audit-action", event.action)],
        "action": _fhir_action(event.action),
        "recorded": format_time(event.occurred_at),
        "outcome": _fhir_outcome(event),
        "agent": agents,
        "source": {"observer": {"display": "LEAD Partner Portal"},
                   "type": [_coding("http://terminology.hl7.org/CodeSystem/security-source-type",
                                    "4", "Application Server")]},
    }
    if any(event.reasons):
        resource["outcomeDesc"] = ", ".join(r for r in event.reasons if r)
    if event.purpose:
        resource["purposeOfEvent"] = [_purpose(event.purpose)]
    if entities:
        resource["entity"] = entities
    return resource


_LOCAL_PURPOSES = frozenset({"LEADMON"})


def _purpose(code: str) -> dict[str, Any]:
    system = (f"{LOCAL_SYSTEM}:purpose" if code in _LOCAL_PURPOSES
              else "http://terminology.hl7.org/CodeSystem/v3-ActReason")
    return {"coding": [_coding(system, code)]}


def export_fhir_ndjson(factory: sessionmaker[Session], log: AuditLog, requester: Requester, *,
                       since: datetime | None = None, until: datetime | None = None,
                       participant_id: uuid.UUID | None = None) -> Iterator[str]:
    """Stream the log as NDJSON of FHIR R4 AuditEvent; the export is audited before any line."""
    record_read(factory, log, requester, AuditAction.AUDIT_EXPORT, participant_id=participant_id,
                detail=_filters_detail("fhir", since, until, participant_id))
    with factory() as session:
        for event in iter_events(session, since=since, until=until,
                                 participant_id=participant_id):
            yield orjson.dumps(fhir_audit_event(event)).decode() + "\n"
