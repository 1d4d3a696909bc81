"""The JSON API (/api/v1): bearer access tokens signed by a real (test) issuer, the session cookie
for reads only, the same decisions and audit events as the pages, identical 404s for unknown and
not-permitted participants, and schemathesis against the served OpenAPI document."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from joserfc.jwk import RSAKey
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.sessions import SessionManager
from portal.config import Settings
from portal.db import audit_chain
from portal.db import models as m
from portal.db import repositories as repo
from portal.devtools.seed import generate_participants, seed_demo
from portal.domain.vocabulary import DataCategory
from portal.kernel.wiring import Services
from portal.web.app import create_app
from tests.e2e.forged_op import ForgedOP
from tests.e2e.fuzzing import case_strategies

BASE = "http://127.0.0.1:8000"
ALEX = "alex.rivera@hope-housing.example"  # housing navigator
MARIA = "maria.lopez@harbor-lead.example"  # case manager
TOM = "tom.becker@riverton-probation.example"  # probation officer
API = "/api/v1"


@dataclass
class Portal:
    settings: Settings
    op: ForgedOP
    db: sessionmaker[Session]
    services: Services
    clients: list[TestClient[Any]]

    def client(self) -> TestClient[Any]:
        """A client of its own app instance (an app's lifespan runs once at a time)."""
        client: TestClient[Any] = TestClient(create_app(self.settings), base_url=BASE)
        client.__enter__()
        self.clients.append(client)
        return client

    def token(self, email: str, **changes: Any) -> str:
        """An access token as a provider issues it (Keycloak style with the audience mapper:
        aud ["account", the portal's client id], azp = the portal's client id). ``changes``
        replace claims; a value of None removes the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.op.issuer, "sub": email,
                                  "aud": ["account", self.op.client_id],
                                  "azp": self.op.client_id, "iat": now, "exp": now + 300,
                                  "typ": "Bearer", "scope": "openid email profile"}
        for key, value in changes.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return self.op.sign(claims)

    def bearer(self, email: str, **changes: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(email, **changes)}"}

    def cookie_client(self, email: str) -> TestClient[Any]:
        with self.db.begin() as s:
            user = repo.staff_by_email(s, email)
            assert user is not None
            token = SessionManager(self.settings, self.services.audit).start(
                s, staff_user_id=user.id)
        client = self.client()
        client.cookies.set("portal_session", token)
        return client


@pytest.fixture
def op() -> Iterator[ForgedOP]:
    forged = ForgedOP().start()
    yield forged
    forged.stop()


@pytest.fixture
def portal(settings: Settings, session_factory: sessionmaker[Session], services: Services,
           op: ForgedOP, tmp_path: Path) -> Iterator[Portal]:
    providers = tmp_path / "providers.json"
    providers.write_text(json.dumps([{
        "id": "forged", "name": "Forged Agency SSO", "issuer": op.issuer,
        "client_id": op.client_id, "client_secret": op.client_secret}]))
    with session_factory.begin() as session:
        # The demo staff accounts belong to the test issuer, as if they had signed in there.
        seed_demo(session, issuer=op.issuer, vault=services.vault)
    app_settings = Settings(env="test", database_url=settings.database_url,
                            data_key_file=settings.data_key_file, data_dir=settings.data_dir,
                            oidc_providers_file=providers, dev_idp=False)
    portal = Portal(app_settings, op, session_factory, services, [])
    yield portal
    for client in portal.clients:
        client.__exit__(None, None, None)


def events(db: sessionmaker[Session], *actions: str) -> list[m.AuditEvent]:
    with db() as s:
        return list(s.scalars(select(m.AuditEvent).where(m.AuditEvent.action.in_(actions))
                              .order_by(m.AuditEvent.seq)))


def authored_records(db: sessionmaker[Session]) -> int:
    """Records written by staff (the demo seed's records have no author user)."""
    with db() as s:
        return s.scalar(select(func.count()).select_from(m.Record).where(
            m.Record.author_user_id.is_not(None))) or 0


def category(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in body["categories"] if c["category"] == name)


def section(html: str, name: str) -> str:
    match = re.search(rf'<section class="category" aria-labelledby="h-{name}">(.*?)</section>',
                      html, re.S)
    assert match, name
    return match.group(1)


# --- authentication ------------------------------------------------------------------------


def test_a_bearer_token_reads_the_caseload_page_by_page(portal: Portal) -> None:
    generate_participants(portal.db, portal.services.vault, 30, seed=5)
    client = portal.client()
    first = client.get(f"{API}/participants", headers=portal.bearer(MARIA))
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    ids = [p["id"] for p in body["participants"]]
    assert len(ids) == 25 and ids == sorted(ids)
    marcus = next(p for p in body["participants"] if p["id"] == "LP-1001")
    assert marcus["name"] == "Marcus Reed" and marcus["enrolled_on"]
    assert isinstance(marcus["urgent_needs"], int)
    assert body["next_after"] == ids[-1]
    second = client.get(f"{API}/participants", params={"after": body["next_after"]},
                        headers=portal.bearer(MARIA)).json()
    more = [p["id"] for p in second["participants"]]
    assert len(more) == 42 - 25 and not set(ids) & set(more) and second["next_after"] is None
    found = client.get(f"{API}/participants", params={"q": "reed"},
                       headers=portal.bearer(MARIA)).json()
    assert [p["id"] for p in found["participants"]] == ["LP-1001"]
    housing = client.get(f"{API}/participants", headers=portal.bearer(ALEX)).json()
    housing_ids = {p["id"] for p in housing["participants"]}
    assert "LP-1001" in housing_ids and "LP-1003" not in housing_ids
    # Audited like the caseload page, and the event says which token (not which session).
    views = events(portal.db, "participant:view")
    assert len(views) == 4 and views[0].actor == MARIA
    assert views[0].session_id and views[0].session_id.startswith("at:")
    assert views[0].detail["view"] == "caseload"


def _alg_none(portal: Portal) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"iss": portal.op.issuer, "sub": ALEX, "azp": portal.op.client_id,
              "aud": portal.op.client_id, "iat": now, "exp": now + 300}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _hs256_with_public_key(portal: Portal) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": portal.op.issuer, "sub": ALEX,
                              "azp": portal.op.client_id, "iat": now,
                              "exp": now + 300}).encode())
    secret = portal.op.key.as_pem(private=False)
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _other_key(portal: Portal) -> str:
    now = int(time.time())
    impostor = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    return portal.op.sign({"iss": portal.op.issuer, "sub": ALEX, "azp": portal.op.client_id,
                           "iat": now, "exp": now + 300}, key=impostor)


REJECTED: dict[str, Callable[[Portal], str]] = {
    "wrong audience": lambda p: p.token(ALEX, aud="another-app", azp="another-app"),
    "no audience at all": lambda p: p.token(ALEX, aud=None, azp=None),
    "for another API, authorized by the portal": lambda p: p.token(ALEX, aud="other-api"),
    "only azp names the portal": lambda p: p.token(ALEX, aud=None),
    "a lifetime without end": lambda p: p.token(ALEX, exp=1e308),
    "a lifetime over a day": lambda p: p.token(ALEX, exp=int(time.time()) + 25 * 3600),
    "wrong issuer": lambda p: p.token(ALEX, iss=p.op.issuer + "/other"),
    "expired": lambda p: p.token(ALEX, iat=int(time.time()) - 900,
                                 exp=int(time.time()) - 120),
    "no expiry": lambda p: p.token(ALEX, exp=None),
    "issued in the future": lambda p: p.token(ALEX, iat=int(time.time()) + 600),
    "alg none": _alg_none,
    "HS256 keyed with the public key": _hs256_with_public_key,
    "signed by another key": _other_key,
    "unknown user": lambda p: p.token("nobody@hope-housing.example"),
    "no subject": lambda p: p.token(ALEX, sub=None),
    "an ID token": lambda p: p.token(ALEX, aud=p.op.client_id, nonce="n-1", typ="ID"),
    "garbage": lambda p: "not.a.jwt",
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_invalid_access_tokens_get_401_and_nothing_else(portal: Portal, case: str) -> None:
    client = portal.client()
    token = REJECTED[case](portal)
    response = client.get(f"{API}/participants/LP-1001",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    body = response.json()
    assert body["status_code"] == 401 and body["message"]
    assert "Marcus" not in response.text and "Traceback" not in response.text
    assert events(portal.db, "record:view", "participant:view") == []


def test_a_suspended_account_and_other_schemes_are_refused(portal: Portal) -> None:
    client = portal.client()
    assert client.get(f"{API}/participants/LP-1001",
                      headers=portal.bearer(ALEX)).status_code == 200
    with portal.db.begin() as s:
        s.execute(update(m.StaffUser).where(m.StaffUser.email == ALEX)
                  .values(status="suspended"))
    assert client.get(f"{API}/participants/LP-1001",
                      headers=portal.bearer(ALEX)).status_code == 401
    basic = client.get(f"{API}/participants", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401 and basic.headers["www-authenticate"].startswith("Bearer")
    anonymous = client.get(f"{API}/participants")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"status_code": 401, "message": "sign in or send a bearer token"}
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="lead-portal"'


def test_a_rotated_signing_key_is_fetched_again(portal: Portal) -> None:
    client = portal.client()
    assert client.get(f"{API}/participants", headers=portal.bearer(ALEX)).status_code == 200
    fetches = portal.op.jwks_fetches
    portal.op.key = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)
    # Within the rate limit the cached keys are used: the new key id is not known yet.
    assert client.get(f"{API}/participants", headers=portal.bearer(ALEX)).status_code == 401
    rp = client.app.state.auth.providers["forged"]
    rp.clock = lambda: time.time() + 120
    assert client.get(f"{API}/participants", headers=portal.bearer(ALEX)).status_code == 200
    assert portal.op.jwks_fetches == fetches + 1


def test_a_session_cookie_may_read_but_not_write(portal: Portal) -> None:
    client = portal.cookie_client(ALEX)
    page = client.get(f"{API}/participants/LP-1001")
    assert page.status_code == 200 and page.json()["id"] == "LP-1001"
    refused = client.post(f"{API}/participants/LP-1001/records", json={
        "category": "housing", "title": "Forged", "body": "from another site"})
    assert refused.status_code == 401
    assert "bearer token" in refused.json()["message"]
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert authored_records(portal.db) == 0
    assert events(portal.db, "record:create") == []
    # The same change with a bearer token is accepted (the cookie is then irrelevant).
    ok = client.post(f"{API}/participants/LP-1001/records", headers=portal.bearer(ALEX), json={
        "category": "housing", "title": "Voucher", "body": "Voucher issued."})
    assert ok.status_code == 201, ok.text
    assert authored_records(portal.db) == 1


def test_a_participant_session_is_not_an_api_credential(portal: Portal) -> None:
    with portal.db.begin() as s:
        participant = repo.participant_by_public_id(s, "LP-1001")
        assert participant is not None
        token = SessionManager(portal.settings, portal.services.audit).start(
            s, participant_id=participant.id)
    client = portal.client()
    client.cookies.set("portal_session", token)
    response = client.get(f"{API}/participants/LP-1001")
    assert response.status_code == 401 and "Marcus" not in response.text


# --- the same decision as the page ---------------------------------------------------------


def test_the_housing_navigator_gets_the_pages_decision(portal: Portal) -> None:
    client = portal.client()
    response = client.get(f"{API}/participants/LP-1001", headers=portal.bearer(ALEX))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "LP-1001" and body["name"] == "Marcus Reed"
    housing = category(body, "housing")
    assert housing["may_add"]
    assert any(r["title"] == "Coordinated entry assessment" for r in housing["records"])
    assert all(r["author"] and r["effective_date"] for r in housing["records"])
    assert any("Engagement summary" in (r["title"] or "")
               for r in category(body, "progress")["records"])
    sud = category(body, "sud_treatment")
    assert sud["withheld"] and sud["records"] == [] and "role policy" in sud["withheld_reason"]
    assert "Opioid" not in response.text and "Buprenorphine" not in response.text
    # Category by category, exactly what the HTML page shows to the same person.
    html = portal.cookie_client(ALEX).get("/participants/LP-1001").text
    for item in body["categories"]:
        shown = section(html, item["category"])
        assert item["withheld"] == ("Withheld" in shown), item["category"]
        for record in item["records"]:
            assert record["title"] in shown
        assert shown.count("<article") == len(item["records"]), item["category"]
    records = client.get(f"{API}/participants/LP-1001/records",
                         params={"category": "sud_treatment"}, headers=portal.bearer(ALEX))
    assert records.status_code == 200
    assert records.json()["category"]["withheld"] and not records.json()["category"]["records"]
    assert "Opioid" not in records.text
    own = client.get(f"{API}/participants/LP-1001/records", params={"category": "housing"},
                     headers=portal.bearer(ALEX)).json()
    assert own["category"]["records"] == housing["records"]
    bad = client.get(f"{API}/participants/LP-1001/records", params={"category": "gossip"},
                     headers=portal.bearer(ALEX))
    assert bad.status_code == 400 and bad.json()["message"]
    why = client.get(f"{API}/participants/LP-1001/decisions/sud_treatment",
                     headers=portal.bearer(ALEX))
    assert why.status_code == 200
    assert "role policy" in " ".join(why.json()["explanation"])
    assert "Cedar" not in why.text and "Opioid" not in why.text


def test_probation_sees_goal_status_not_what_is_behind_it(portal: Portal) -> None:
    response = portal.client().get(f"{API}/participants/LP-1001", headers=portal.bearer(TOM))
    body = response.json()
    housing_goal = next(g for g in body["goals"] if g["detail_category"] == "housing")
    assert housing_goal["status"] and housing_goal["detail"] is None
    assert "Cedar Court" not in response.text and "Opioid" not in response.text
    assert any("adverse action" in n for n in body["notices"])
    progress = category(body, "progress")
    assert any("42 CFR part 2" in n for n in progress["notices"])


def test_every_records_answer_to_a_justice_user_carries_the_notice(portal: Portal) -> None:
    """The care-coordination-only notice comes from the decision's obligations on every path,
    the records of one category too (issue 20, item 3)."""
    client = portal.client()
    justice = ["tom.becker@riverton-probation.example", "james.carter@riverton-pd.example",
               "priya.shah@riverton-pa.example", "linda.nguyen@riverton-court.example"]
    answered = 0
    for email in justice:
        headers = portal.bearer(email)
        for number in range(1001, 1011):
            whole = client.get(f"{API}/participants/LP-{number}", headers=headers)
            if whole.status_code == 404:
                continue
            notices = whole.json()["notices"]
            assert any("adverse action" in n for n in notices), (email, number)
            for c in DataCategory:
                response = client.get(f"{API}/participants/LP-{number}/records",
                                      params={"category": c.value}, headers=headers)
                assert response.status_code == 200, (email, number, c)
                assert response.json()["notices"] == notices, (email, number, c)
                answered += 1
    assert answered >= 2 * len(DataCategory)


def test_each_api_read_writes_the_pages_audit_events(portal: Portal) -> None:
    def trail(after: int) -> list[tuple[Any, ...]]:
        with portal.db() as s:
            return [(e.action, e.category, e.decision, tuple(e.record_ids), tuple(e.reasons),
                     tuple(e.consent_ids), e.purpose, e.participant_id, e.actor,
                     e.detail.get("disclosers"))
                    for e in s.scalars(select(m.AuditEvent).where(m.AuditEvent.seq > after)
                                       .order_by(m.AuditEvent.seq))]

    def head() -> int:
        with portal.db() as s:
            return s.scalar(select(func.max(m.AuditEvent.seq))) or 0

    browser = portal.cookie_client(ALEX)
    api = portal.client()
    pages: list[list[tuple[Any, ...]]] = []
    for page_path, api_path in [
            ("/participants/LP-1001", f"{API}/participants/LP-1001"),
            ("/participants/LP-1001/why/sud_treatment",
             f"{API}/participants/LP-1001/decisions/sud_treatment")]:
        start = head()
        assert browser.get(page_path).status_code == 200
        middle = head()
        assert api.get(api_path, headers=portal.bearer(ALEX)).status_code == 200
        page_events, api_events = trail(start)[:middle - start], trail(middle)
        assert page_events and api_events == page_events, api_path
        pages.append(page_events)
    # The explanation discloses nothing: no view is logged again.
    assert [e for e in page_events if e[0] == "record:view"] == []
    # Every category is decided and audited: shown ones as views, withheld ones as withheld.
    views = [e for e in trail(0) if e[0] in ("record:view", "record:withhold")]
    assert {e[1] for e in views} == {"contact", "case_plan", "progress", "housing", "benefits",
                                     "health", "mental_health", "sud_treatment", "justice"}
    sud = [e for e in views if e[1] == "sud_treatment"]
    assert {e[0] for e in sud} == {"record:withhold"}
    assert all(e[2] == "deny" and "no_role_permission" in e[4] for e in sud)
    # The records endpoint decides (and audits) the whole page, then filters.
    start = head()
    api.get(f"{API}/participants/LP-1001/records", params={"category": "housing"},
            headers=portal.bearer(ALEX))
    assert [e[1] for e in trail(start) if e[0] == "record:view"] == [
        e[1] for e in pages[0] if e[0] == "record:view"]


def test_consents_for_case_managers_on_the_care_team_only(portal: Portal) -> None:
    client = portal.client()
    listed = client.get(f"{API}/participants/LP-1001/consents", headers=portal.bearer(MARIA))
    assert listed.status_code == 200, listed.text
    consents = listed.json()["consents"]
    assert consents and {c["kind"] for c in consents} >= {"roi"}
    assert all(c["provisions"] and c["status"] for c in consents)
    permit = events(portal.db, "consent:view")
    assert len(permit) == 1 and permit[0].decision == "permit"
    assert sorted(permit[0].consent_ids) == sorted(c["id"] for c in consents)
    # A housing navigator on the care team: the role policy does not allow consent forms.
    refused = client.get(f"{API}/participants/LP-1001/consents", headers=portal.bearer(ALEX))
    assert refused.status_code == 403 and "consent" in refused.json()["message"]
    assert "roi" not in refused.text
    denial = events(portal.db, "consent:view")[-1]
    assert denial.decision == "deny" and denial.actor == ALEX
    assert denial.reasons == ["no_role_permission"] and denial.consent_ids == []


# --- IDOR ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/participants/{id}"),
    ("GET", "/participants/{id}/records?category=housing"),
    ("GET", "/participants/{id}/consents"),
    ("GET", "/participants/{id}/decisions/housing"),
    ("POST", "/participants/{id}/records"),
])
def test_off_team_and_unknown_participants_get_identical_404s(
        portal: Portal, method: str, path: str) -> None:
    client = portal.client()
    email = MARIA if "consents" in path else ALEX
    maria_off_team = "LP-1003"
    if email == MARIA:
        # Harbor is on every demo participant's team: take it off LP-1003's.
        with portal.db.begin() as s:
            participant = repo.participant_by_public_id(s, maria_off_team)
            assert participant is not None
            s.execute(update(m.CareTeamMember).where(
                m.CareTeamMember.participant_id == participant.id,
                m.CareTeamMember.organization_id == select(m.Organization.id).where(
                    m.Organization.slug == "harbor-lead").scalar_subquery())
                .values(end_date=participant.enrolled_on))
    answers = []
    for pid in ("LP-1003", "LP-ZZZZZZZZ", "lp-1003x", "LP-1003%00"):
        answers.append(client.request(
            method, API + path.format(id=pid), headers=portal.bearer(email),
            json={"category": "housing", "title": "x", "body": "y"} if method == "POST"
            else None))
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert answers[0].json() == {"status_code": 404, "message": "not found"}
    assert all("Darnell" not in a.text for a in answers)
    assert authored_records(portal.db) == 0
    # Nothing was disclosed; the one real participant's refusal is on record (the others are
    # no one).
    assert events(portal.db, "record:view", "decision:explain") == []
    refusals = events(portal.db, "participant:view", "record:create", "consent:view")
    assert [(e.decision, e.reasons) for e in refusals] == [("deny", ["not_on_care_team"])]
    # ...while the same route answers for a participant on the team.
    ok = client.request(method, API + path.format(id="LP-1001"), headers=portal.bearer(email),
                        json={"category": "housing", "title": "x", "body": "y"}
                        if method == "POST" else None)
    assert ok.status_code in (200, 201), ok.text


def test_odd_inputs_are_refused_before_they_reach_the_database(portal: Portal) -> None:
    """NUL bytes and over-long values would fail inside PostgreSQL (a 500, or a refused audit
    write); they are answered as client errors instead, and a long request id is dropped."""
    client = portal.client()
    headers = portal.bearer(ALEX)
    after = client.get(f"{API}/participants", params={"after": "LP-1\x00"}, headers=headers)
    assert after.status_code == 400 and after.json()["status_code"] == 400
    nul = client.get(f"{API}/participants/LP-10%0001", headers=headers)
    assert nul.status_code == 404 and nul.json() == {"status_code": 404, "message": "not found"}
    traced = client.get(f"{API}/participants/LP-1001",
                        headers={**headers, "x-request-id": "r" * 100})
    assert traced.status_code == 200
    kept = client.get(f"{API}/participants/LP-1001", headers={**headers, "x-request-id": "r-1"})
    assert kept.status_code == 200
    request_ids = {e.request_id for e in events(portal.db, "record:view")}
    assert request_ids == {None, "r-1"}


def test_a_record_that_cannot_be_decrypted_is_unavailable_audited_and_not_disclosed(
        portal: Portal) -> None:
    # A record another agency wrote that Alex is shown under the participant's consent.
    api = portal.client()
    assert api.get(f"{API}/participants/LP-1001", headers=portal.bearer(ALEX)).status_code == 200
    (shown, *_) = [e for e in events(portal.db, "record:view")
                   if e.actor == ALEX and e.record_ids and e.detail.get("disclosers")]
    record_id = shown.record_ids[0]
    with portal.db.begin() as s:
        record = s.get(m.Record, uuid.UUID(record_id))
        assert record is not None
        record.title_enc = bytes(len(record.title_enc))  # corrupted in the database
    mark = max(e.seq for e in events(portal.db, "record:view"))
    answer = api.get(f"{API}/participants/LP-1001", headers=portal.bearer(ALEX))
    assert answer.status_code == 200
    (out,) = [r for c in answer.json()["categories"] for r in c["records"]
              if r["id"] == record_id]
    assert out["unavailable"] is True and out["title"] is None and out["body"] is None
    page = portal.cookie_client(ALEX).get("/participants/LP-1001")
    assert page.status_code == 200 and "Unavailable" in page.text
    after = [e for e in events(portal.db, "record:view", "record:withhold") if e.seq > mark]
    assert after and all(record_id not in e.record_ids for e in after)
    assert all(e.detail.get("unavailable") == [record_id] for e in after
               if e.category == record.category)
    failures = [e for e in events(portal.db, "crypto:decrypt:failure") if e.seq > mark]
    assert len(failures) == 2  # the API answer and the page
    for failure in failures:
        assert list(failure.record_ids) == [record_id] and failure.actor == ALEX
        assert failure.detail["failures"][0]["column"] == "title"
    # Not counted as disclosed: no disclosure since names it.
    with portal.db() as s:
        found = audit_chain.disclosures(s, record.participant_id)
    assert all(record_id not in d.record_ids for d in found if d.seq > mark)


# --- writes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "message"), [
    ({"category": "sud_treatment", "title": "x", "body": "y"}, "cannot add"),
    ({"category": "housing", "title": "", "body": "y"}, "title"),
    ({"category": "housing", "title": "x", "body": "y", "effective_date": "2999-01-01"},
     "future"),
    ({"category": "housing", "title": "x", "body": "y", "effective_date": "soon"}, "date"),
    ({"category": "gossip", "title": "x", "body": "y"}, "category"),
    ({"category": "housing", "title": 7, "body": "y"}, "title"),
    ({"category": "housing", "body": "y"}, "title"),
    ({"category": "housing", "title": "x" * 201, "body": "y"}, "200"),
])
def test_bad_records_are_refused_with_a_message_and_nothing_written(
        portal: Portal, payload: dict[str, Any], message: str) -> None:
    response = portal.client().post(f"{API}/participants/LP-1001/records", json=payload,
                                    headers=portal.bearer(ALEX))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status_code"] == 400 and message in body["message"]
    assert authored_records(portal.db) == 0
    assert events(portal.db, "record:create") == []


def test_a_record_added_through_the_api_is_shown_and_audited(portal: Portal) -> None:
    client = portal.client()
    created = client.post(f"{API}/participants/lp-1001/records", headers=portal.bearer(ALEX),
                          json={"category": "housing", "title": "Voucher issued",
                                "body": "Section 8 voucher issued today.",
                                "effective_date": "2026-01-05"})
    assert created.status_code == 201, created.text
    record_id = created.json()["id"]
    assert created.json()["participant_id"] == "LP-1001"
    assert created.headers["location"].endswith("/records?category=housing")
    housing = client.get(f"{API}/participants/LP-1001/records", params={"category": "housing"},
                         headers=portal.bearer(ALEX)).json()["category"]["records"]
    mine = next(r for r in housing if r["id"] == record_id)
    assert mine["body"] == "Section 8 voucher issued today."
    assert mine["effective_date"] == "2026-01-05" and mine["author"] == "Hope Housing Collaborative"
    created_events = events(portal.db, "record:create")
    assert len(created_events) == 1 and created_events[0].record_ids == [record_id]
    assert created_events[0].actor == ALEX
    assert created_events[0].session_id and created_events[0].session_id.startswith("at:")


def test_reads_fail_closed_when_the_audit_log_cannot_be_written(
        portal: Portal, engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        create = ["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                  "BEGIN SELECT RAISE(ABORT, 'disk full (injected)'); END"]
        drop = ["DROP TRIGGER refuse_audit"]
    else:
        create = ["CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$BEGIN RAISE EXCEPTION 'disk full (injected)'; END$$",
                  "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                  "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"]
        drop = ["DROP TRIGGER refuse_audit ON audit_event", "DROP FUNCTION refuse_audit()"]
    client = portal.client()
    headers = portal.bearer(MARIA)
    assert "Opioid" in client.get(f"{API}/participants/LP-1001", headers=headers).text
    with engine.begin() as c:
        for statement in create:
            c.execute(text(statement))
    try:
        refused = client.get(f"{API}/participants/LP-1001", headers=headers)
    finally:
        with engine.begin() as c:
            for statement in drop:
                c.execute(text(statement))
    assert refused.status_code == 503
    assert refused.json()["status_code"] == 503
    assert "Opioid" not in refused.text and "Marcus" not in refused.text


# --- OpenAPI -------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_api(portal: Portal) -> None:
    client = portal.client()
    document = client.get("/schema/openapi.json")
    assert document.status_code == 200
    schema = document.json()
    paths = {p: ops for p, ops in schema["paths"].items() if p.startswith(API)}
    assert set(paths) == {f"{API}/participants", f"{API}/participants/{{public_id}}",
                          f"{API}/participants/{{public_id}}/records",
                          f"{API}/participants/{{public_id}}/consents",
                          f"{API}/participants/{{public_id}}/decisions/{{category}}"}
    assert set(paths[f"{API}/participants/{{public_id}}/records"]) >= {"get", "post"}
    component = schema["components"]["schemas"]
    for path, ops in paths.items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            ok = op["responses"]["201" if method == "post" else "200"]
            ref = ok["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in component, (path, method)
            assert op["responses"]["401"]["content"]["application/json"]["schema"][
                "$ref"].endswith("/ErrorBody")
            if "{public_id}" in path:
                assert "404" in op["responses"], (path, method)
    participant = component["ParticipantOut"]["properties"]
    assert set(participant) >= {"id", "name", "categories", "goals", "notices",
                                "emergency_access_until"}
    assert set(component["RecordOut"]["properties"]) == {"id", "title", "body", "author",
                                                         "effective_date", "unavailable"}
    assert set(component["RecordIn"]["required"]) == {"category", "title", "body"}
    app = client.app
    assert isinstance(app, Litestar)
    assert app.openapi_schema.to_schema()["paths"].keys() == schema["paths"].keys()


# --- schemathesis --------------------------------------------------------------------------


def test_schemathesis_finds_no_server_error_and_no_trace(portal: Portal) -> None:
    """Every operation in the served document, fuzzed in process: valid inputs (free, and on a
    real participant so that decisions and writes run) and invalid ones. (Loaded inside the
    test: schemathesis' lazy pytest fixture loader does not work with pytest 9.)"""
    app = create_app(portal.settings)
    statuses: Counter[int] = Counter()
    try:
        schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).include(
            path_regex=f"^{API}/")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 6
        for operation in operations:
            _fuzz(operation, portal.bearer(MARIA), statuses)
    finally:
        app.state.engine.dispose()
    # The fuzzing reached the handlers: successes and refusals both happened.
    assert statuses[200] and statuses[201] and statuses[404] and statuses[400], statuses


def _fuzz(operation: Any, headers: dict[str, str], statuses: Counter[int]) -> None:
    positive = GenerationMode.POSITIVE

    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(drawn=case_strategies(operation))
    def fuzz(drawn: tuple[GenerationMode, Any]) -> None:
        mode, case = drawn
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        assert "Traceback" not in response.text and 'File "' not in response.text
        if response.status_code >= 400:
            body = response.json()
            assert body["status_code"] == response.status_code and body["message"]
        if mode is positive:
            case.validate_response(response, checks=[
                response_schema_conformance, status_code_conformance, content_type_conformance])

    fuzz()


TWINS = [
    ("/participants/{id}", "/participants/{id}"),
    ("/participants/{id}/consents/", "/participants/{id}/consents"),
    ("/participants/{id}/why/housing", "/participants/{id}/decisions/housing"),
    ("/participants/{id}/why/sud_treatment", "/participants/{id}/decisions/sud_treatment"),
]


def test_every_page_and_its_api_twin_give_each_user_the_same_answer(portal: Portal) -> None:
    """The same use case behind both: every demo staff user gets the same status from a page
    and from its API twin, on and off the care team and for an unknown id."""
    from portal.devtools.seed import STAFF

    client = portal.client()
    compared = 0
    for seed in STAFF:
        browser = portal.cookie_client(seed.email)
        headers = portal.bearer(seed.email)
        for page, api in TWINS:
            for pid in ("LP-1001", "LP-1003", "LP-ZZZZ"):
                page_status = browser.get(page.format(id=pid)).status_code
                api_status = client.get(API + api.format(id=pid), headers=headers).status_code
                assert page_status == api_status, (seed.email, page, pid)
                compared += 1
    assert compared == len(STAFF) * len(TWINS) * 3
