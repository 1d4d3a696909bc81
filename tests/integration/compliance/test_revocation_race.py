"""PostgreSQL: 12 staff clients read a participant's page while the participant takes the
consent back. Reads in flight when the revocation commits finish and are logged after it;
the log orders them by commit, not by clock, and the accounting says they were decided
before the revocation committed. No read that began after the commit is permitted."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from portal.compliance import disclosures as reports
from portal.config import Settings
from portal.db import audit_chain, migrate
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.engine import make_engine, make_session_factory
from portal.devtools.seed import seed_demo
from portal.domain.consent import ConsentStatus
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.selfservice import service as ss
from portal.workspace import service as ws
from tests.conftest import PostgresDatabases
from tests.integration.service_support import ALEX, ISSUER, RENEE

pytestmark = pytest.mark.postgres

CLIENTS = 12
READS_AFTER = 3  # each client goes on reading this many times after the commit
PARTICIPANT = "LP-1001"


@pytest.fixture
def pg(postgres_databases: PostgresDatabases, tmp_path: Path,
       data_key_file: Path) -> Iterator[tuple[Engine, Services]]:
    url = postgres_databases.create()
    settings = Settings(env="test", database_url=url, data_dir=tmp_path,
                        data_key_file=data_key_file, audit_lock_timeout_seconds=30)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    engine.dispose()
    engine = make_engine(settings, pool_size=CLIENTS + 3, max_overflow=0)
    services = Services.build(settings, make_session_factory(engine))
    with make_session_factory(engine).begin() as session:
        seed_demo(session, issuer=ISSUER, vault=services.vault)
    yield engine, services
    engine.dispose()


def _meta(request_id: str) -> RequestMeta:
    return RequestMeta(actor="test", session_id="race", client_address="203.0.113.9",
                       request_id=request_id)


def _waiting_on_the_chain_lock(engine: Engine) -> int:
    """Transactions waiting for an advisory lock (the audit chain's) right now."""
    with engine.connect() as connection:
        return connection.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND wait_event = 'advisory'")) or 0


def test_reads_in_flight_at_a_revocation_are_ordered_by_commit(
        pg: tuple[Engine, Services]) -> None:
    engine, services = pg
    factory: sessionmaker[Session] = make_session_factory(engine)
    # The consent Alex's page relies on for other agencies' information.
    with factory.begin() as session:
        alex = repo.staff_by_email(session, ALEX)
        assert alex is not None
        ws.participant_page(session, services, alex, PARTICIPANT, _meta("warm-up"))
    with factory() as session:
        cited = {c for e in session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.request_id == "warm-up", m.AuditEvent.action == "record:view",
            m.AuditEvent.decision == "permit")) for c in e.consent_ids}
        consents = {str(c.id): c for c in session.scalars(select(m.Consent).where(
            m.Consent.id.in_([uuid.UUID(c) for c in cited])))}
    consent_id = next(c for c, row in sorted(consents.items(), key=lambda c: c[1].kind != "roi")
                      if row.status == ConsentStatus.ACTIVE.value)

    committed = threading.Event()  # set once the revocation's commit has returned
    warmed = threading.Barrier(CLIENTS + 1)
    errors: list[BaseException] = []
    began_after: list[str] = []  # request ids of reads begun after the commit
    lock = threading.Lock()

    def client(number: int) -> None:
        try:
            after = 0
            i = 0
            while after < READS_AFTER:
                request_id = f"client-{number}-{i}"
                i += 1
                late = committed.is_set()
                with factory.begin() as session:
                    user = repo.staff_by_email(session, ALEX)
                    assert user is not None
                    ws.participant_page(session, services, user, PARTICIPANT,
                                        _meta(request_id))
                if i == 1:
                    warmed.wait()
                if late:
                    after += 1
                    with lock:
                        began_after.append(request_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            warmed.abort()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    warmed.wait()  # every client has read the page once: they are all reading now
    with factory.begin() as session:
        participant = repo.participant_by_public_id(session, PARTICIPANT)
        assert participant is not None
        ss.revoke_mine(session, services, participant, consent_id, _meta("revoke"))
        # Hold the commit (and the chain lock) until a read that has already loaded the
        # consents waits to write its events: it is in flight when the revocation commits.
        for _ in range(20_000):
            if _waiting_on_the_chain_lock(engine) or errors:
                break
        assert _waiting_on_the_chain_lock(engine) >= 1, "no read was in flight"
    committed.set()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(began_after) == CLIENTS * READS_AFTER

    with factory() as session:
        revoke_seq = session.scalars(select(m.AuditEvent.seq).where(
            m.AuditEvent.request_id == "revoke", m.AuditEvent.action == "consent:revoke")).one()
        under = list(session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "record:view", m.AuditEvent.decision == "permit",
            m.AuditEvent.request_id.like("client-%")).order_by(m.AuditEvent.seq)))
        under = [e for e in under if consent_id in e.consent_ids]
        late_reads = list(session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.request_id.in_(began_after))))
        participant_id = repo.participant_by_public_id(session, PARTICIPANT).id  # type: ignore[union-attr]
        found = audit_chain.disclosures(session, participant_id)

    # Every decision says when it was made and where the chain was when it read consents.
    for event in under + late_reads:
        if event.action in ("record:view", "record:withhold"):
            assert isinstance(event.detail["observed_seq"], int)
            assert event.detail["decided_at"].endswith("Z")
    # No read that began after the commit was permitted under the revoked consent; each
    # one read the chain at or past the revocation.
    assert late_reads
    for event in late_reads:
        assert consent_id not in event.consent_ids or event.decision != "permit", event.seq
        if event.action in ("record:view", "record:withhold"):
            assert event.detail["observed_seq"] >= revoke_seq
    # Reads in flight: permitted under the consent, logged after the revocation (by seq,
    # and stamped after it), and decided before it committed (observed below its seq).
    in_flight = [e for e in under if e.seq > revoke_seq]
    assert in_flight, "a read that had loaded the consents was waiting for the chain lock"
    for event in in_flight:
        assert event.detail["observed_seq"] < revoke_seq
        assert event.detail["consent_versions"][consent_id] == consents[consent_id].version
    # Every permit under the consent read it before the revocation committed.
    assert all(e.detail["observed_seq"] < revoke_seq for e in under)

    # The accounting: in chain order; each disclosure under the consent logged after the
    # revocation is "decided before the revocation committed", and none is "after".
    assert [d.seq for d in found] == sorted(d.seq for d in found)
    flight = {e.seq for e in in_flight}
    listed = [d for d in found if d.seq in flight]
    assert len(listed) == len({e.seq for e in in_flight if e.detail["disclosers"]})
    assert listed and all(d.revocation == "before" and d.revocation_seq == revoke_seq
                          for d in listed)
    assert not [d for d in found if d.revocation in ("after", "unknown")]
    with factory.begin() as session:
        renee = repo.staff_by_email(session, RENEE)
        assert renee is not None
        report = reports.disclosure_report(session, services, renee, _meta("report"),
                                           PARTICIPANT)
    assert len(report.rows) == len(found)
    for disclosure, row in zip(found, report.rows, strict=True):
        basis = row[reports.DISCLOSURE_COLUMNS.index("Basis")]
        if disclosure.seq in flight:
            assert basis.endswith("since revoked: decided before the revocation committed")
        assert "after the revocation" not in basis
    # The participant's "who has looked" says the same, in their words.
    with factory.begin() as session:
        participant = repo.participant_by_public_id(session, PARTICIPANT)
        assert participant is not None
        looks = ss.who_looked(session, services, participant, _meta("looked"))
    assert [look.seq for look in looks] == sorted((look.seq for look in looks), reverse=True)
    # Only the looks in flight at the revocation say so (not those long before it).
    assert {look.seq for look in looks if look.before_revocation} == {d.seq for d in listed}
    accounting = ss.group_looks(looks)
    assert any(v.before_revocation for _, visits in accounting.agencies for v in visits)
