"""Demo data and the operator CLI: realistic coverage, rerunnable, JSON listings, clear errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.cli import listening_socket, main
from portal.config import Settings
from portal.crypto.vault import Vault
from portal.db import migrate
from portal.db.engine import make_engine
from portal.db.models import (
    AuditEvent,
    CareTeamMember,
    Consent,
    Goal,
    Organization,
    Participant,
    Record,
    StaffRole,
    StaffUser,
)
from portal.devtools.seed import DemoAlreadySeeded, generate_participants, seed_demo
from portal.domain.consent import ConsentKind, ConsentStatus
from portal.domain.vocabulary import DataCategory, Role, Sector


def _seed(factory: sessionmaker[Session], vault: Vault) -> None:
    with factory.begin() as session:
        seed_demo(session, issuer="http://127.0.0.1:8000/dev-idp", vault=vault)


def test_demo_site_is_complete(session_factory: sessionmaker[Session], vault: Vault) -> None:
    _seed(session_factory, vault)
    with session_factory() as s:
        sectors = set(s.scalars(select(Organization.sector)))
        assert {Sector.CASE_MANAGEMENT, Sector.SUD_TREATMENT, Sector.MENTAL_HEALTH,
                Sector.HOUSING, Sector.POLICE, Sector.PROSECUTION} <= sectors
        assert sectors & {Sector.PROBATION, Sector.COURT}
        assert s.scalar(select(Organization.part2_program).where(
            Organization.sector == Sector.SUD_TREATMENT.value)) is True
        roles = set(s.scalars(select(StaffRole.role)))
        assert {Role.COMPLIANCE_OFFICER, Role.ORG_ADMIN} <= roles and len(roles) >= 10
        assert s.scalar(select(func.count()).select_from(Participant)) >= 12
        assert set(s.scalars(select(Record.category))) == {c.value for c in DataCategory}
        assert s.scalar(select(func.count()).select_from(Goal).where(Goal.urgent)) >= 3
        consents = s.execute(select(Consent.kind, Consent.status)).all()
        states = {(k, st) for k, st in consents}
        assert (ConsentKind.ROI, ConsentStatus.ACTIVE) in states
        assert (ConsentKind.PART2, ConsentStatus.ACTIVE) in states
        assert (ConsentKind.PART2_CRIMINAL_JUSTICE, ConsentStatus.ACTIVE) in states
        assert {ConsentStatus.REVOKED, ConsentStatus.EXPIRED, ConsentStatus.DRAFT} <= {
            st for _, st in consents}
        assert s.scalar(select(func.count()).select_from(CareTeamMember)) >= 24


def test_seeding_twice_changes_nothing(session_factory: sessionmaker[Session],
                                       vault: Vault) -> None:
    _seed(session_factory, vault)
    with session_factory() as s:
        before = s.scalar(select(func.count()).select_from(Record))
    with pytest.raises(DemoAlreadySeeded):
        _seed(session_factory, vault)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == before


def test_synthetic_participants_in_batches(session_factory: sessionmaker[Session],
                                           vault: Vault) -> None:
    _seed(session_factory, vault)
    batches: list[int] = []
    assert generate_participants(session_factory, vault, 250, batch_size=100,
                                 progress=batches.append, seed=7) == 250
    assert batches == [100, 100, 50]
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 12 + 250
        ids = list(s.scalars(select(Participant.public_id)))
        assert len(ids) == len(set(ids))


def _invoke(settings: Settings, *args: str) -> tuple[int, str]:
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_DATA_DIR": str(settings.data_dir),
           "PORTAL_DATA_KEY_FILE": str(settings.data_key_file)}
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_cli_seed_and_json_listings(settings: Settings, engine: object) -> None:
    code, out = _invoke(settings, "seed-demo", "--participants", "5")
    assert code == 0, out
    code, out = _invoke(settings, "users", "list", "--json")
    assert code == 0, out
    users = json.loads(out)
    assert len(users) >= 10
    assert all(set(u) == {"email", "name", "organization", "sector", "roles"} for u in users)
    officer = next(u for u in users if u["email"] == "james.carter@riverton-pd.example")
    assert officer["sector"] == "police" and officer["roles"] == ["police_officer"]

    code, out = _invoke(settings, "participants", "list", "--json")
    assert code == 0, out
    people = json.loads(out)
    assert len(people) == 17
    assert all(set(p) == {"id", "display_name", "care_team"} for p in people)
    marcus = next(p for p in people if p["id"] == "LP-1001")
    assert marcus["display_name"] == "Marcus Reed"
    assert "Harbor LEAD Case Management" in marcus["care_team"]

    code, out = _invoke(settings, "seed-demo")
    assert code == 0 and "already present" in out


def test_cli_issues_a_sign_in_code_as_the_readme_says(settings: Settings,
                                                      session_factory: sessionmaker[Session],
                                                      engine: object) -> None:
    """README, "Try it": `portal participants issue-code LP-1001 --by <case manager>`."""
    assert _invoke(settings, "seed-demo", "--participants", "0")[0] == 0
    code, out = _invoke(settings, "participants", "issue-code", "lp-1001",
                        "--by", "maria.lopez@harbor-lead.example")
    assert code == 0, out
    assert "One-time code for LP-1001: " in out and "/me/enrol" in out
    with session_factory() as s:
        issued = s.scalars(select(AuditEvent).where(
            AuditEvent.action == "auth:enrolment_code:issue")).all()
    assert [e.actor for e in issued] == ["maria.lopez@harbor-lead.example"]
    # Nobody, someone who may not, and no such participant: exit 2 and nothing issued.
    for args, problem in (
            (("LP-1001", "--by", "nobody@example.org"), "may not issue sign-in codes"),
            (("LP-1001", "--by", "james.carter@riverton-pd.example"), "may not issue"),
            (("LP-9999", "--by", "maria.lopez@harbor-lead.example"), "no participant")):
        code, out = _invoke(settings, "participants", "issue-code", *args)
        assert code == 2 and problem in out, (args, out)
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "auth:enrolment_code:issue")) == 1


def test_cli_misuse_prints_usage_and_exits_2(settings: Settings) -> None:
    code, out = _invoke(settings, "seed-demo", "--participants", "-3")
    assert code == 2 and "Usage:" in out
    code, out = _invoke(settings, "no-such-command")
    assert code == 2 and "Usage:" in out


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"PORTAL_DATABASE_URL": "not a url"}, "error: PORTAL_DATABASE_URL: not a valid"),
        ({"PORTAL_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
         "error: PORTAL_DATABASE_URL: cannot connect"),
        ({"PORTAL_ENV": "production"}, "error: PORTAL_SECRET_KEY: production needs"),
    ],
)
def test_bad_settings_stop_startup_with_one_line(
    environ: dict[str, str], expected: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(environ, PORTAL_DATA_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "portal", "serve"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(expected)


def test_the_shared_listening_socket_turns_nagle_off_for_every_connection() -> None:
    """`portal serve --workers N` shares one socket; its accepted connections must not wait
    for delayed ACKs (uvicorn's own socket leaves Nagle on, about 40 ms per keep-alive
    response)."""
    config = uvicorn.Config("portal.web.asgi:app_from_environment", host="127.0.0.1", port=0)
    listener = listening_socket(config)
    try:
        listener.listen()
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with socket.create_connection(listener.getsockname()[:2]):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        listener.close()


def test_serve_with_several_workers(settings: Settings, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env.update(PORTAL_DATABASE_URL=settings.database_url, PORTAL_DATA_DIR=str(tmp_path),
               PORTAL_DATA_KEY_FILE=str(settings.data_key_file), PORTAL_ENV="test",
               PORTAL_PORT=str(port))
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "portal", "serve", "--workers", "2"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        answers: list[int] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    answers.append(client.get("/healthz").status_code)
                except httpx.TransportError:
                    assert server.poll() is None, (tmp_path / "serve.log").read_text()
                    time.sleep(0.1)
                    continue
                if len(answers) == 3:
                    break
        assert answers == [200, 200, 200], (tmp_path / "serve.log").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_a_policy_model_that_is_not_deny_override(
        settings: Settings, engine: object, tmp_path: Path) -> None:
    """An allow-only effect would let deny rows (the Golden Rule) stop winning: the portal
    does not start on it, and says why."""
    import shutil

    from portal.policy.casbin_policy import default_policies_dir

    broken = tmp_path / "policies"
    shutil.copytree(default_policies_dir(), broken)
    model = broken / "model.conf"
    model.write_text(model.read_text().replace(" && !some(where (p.eft == deny))", ""))
    result = CliRunner().invoke(main, ["serve", "--port", "8799"], env={
        "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_DATA_DIR": str(settings.data_dir),
        "PORTAL_DATA_KEY_FILE": str(settings.data_key_file),
        "PORTAL_POLICIES_DIR": str(broken)})
    assert result.exit_code == 1
    assert "does not start" in result.output and "deny-override" in result.output


# --- newcomer and operator paths (issue 18) ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _staff_sign_in_goes_to(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    """Staff sign-in through the development provider starts at the port served: the
    provider's issuer, its endpoints and the portal's redirect URI all name it (before the
    fix the portal asked port 8000 and answered 503)."""
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(600):
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            time.sleep(0.1)
        discovery = client.get("/dev-idp/.well-known/openid-configuration").json()
        assert discovery["issuer"] == f"{base}/dev-idp"
        assert discovery["authorization_endpoint"].startswith(f"{base}/dev-idp/")
        start = client.get("/auth/login/dev")
        assert start.status_code in (302, 303), (start.status_code, log.read_text())
        authorize = httpx.URL(start.headers["location"])
        assert str(authorize).startswith(f"{base}/dev-idp/authorize")
        assert authorize.params["redirect_uri"] == f"{base}/auth/callback/dev"
        assert client.get(str(authorize)).status_code == 200
        assert client.head("/").status_code == 200


def _run_demo(env: dict[str, str], port: int, tmp_path: Path, *args: str) -> None:
    log = tmp_path / f"demo-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "portal", "demo", *args], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        _staff_sign_in_goes_to(port, server, log)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _seeded_issuers(data_dir: Path) -> set[str]:
    engine = make_engine(Settings(database_url=f"sqlite:///{data_dir / 'portal.db'}"))
    try:
        with engine.connect() as connection:
            return set(connection.scalars(select(StaffUser.issuer)))
    finally:
        engine.dispose()


def test_demo_serves_and_signs_in_on_the_port_it_is_given(tmp_path: Path) -> None:
    """`PORTAL_PORT=N portal demo` serves N (it served 8000), and `portal demo --port M`
    serves M with the development provider and the seeded personas on M, also when the demo
    was seeded on another port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    first, second = _free_port(), _free_port()
    env.update(PORTAL_DATA_DIR=str(tmp_path), PORTAL_PORT=str(first))
    _run_demo(env, first, tmp_path)
    assert _seeded_issuers(tmp_path) == {f"http://127.0.0.1:{first}/dev-idp"}
    _run_demo(env, second, tmp_path, "--port", str(second))  # --port wins over PORTAL_PORT
    assert _seeded_issuers(tmp_path) == {f"http://127.0.0.1:{second}/dev-idp"}


def _cli(url: str, data_dir: Path, *args: str) -> tuple[int, str]:
    env = {"PORTAL_DATABASE_URL": url, "PORTAL_DATA_DIR": str(data_dir)}
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_db_downgrade_takes_a_relative_revision(new_database_url: str, tmp_path: Path) -> None:
    """`portal db downgrade -1`, the help text's own example, goes one step down (click read
    -1 as an unknown option)."""
    assert _cli(new_database_url, tmp_path, "db", "upgrade")[0] == 0
    engine = make_engine(Settings(database_url=new_database_url))
    try:
        head = migrate.current_revision(engine)
        code, out = _cli(new_database_url, tmp_path, "db", "downgrade", "-1")
        assert code == 0, out
        below = migrate.current_revision(engine)
        assert below is not None and below != head
        assert f"Database schema at {below}." in out
        code, out = _cli(new_database_url, tmp_path, "db", "downgrade", "--help")
        assert code == 0 and "'-1' for one step" in out
        assert _cli(new_database_url, tmp_path, "db", "upgrade")[0] == 0
        assert migrate.current_revision(engine) == head
    finally:
        engine.dispose()


def test_piped_tables_are_not_cut_and_keys_retire_names_what_it_can(
        new_database_url: str, tmp_path: Path) -> None:
    """CliRunner's stdout is not a terminal, like a pipe: tables print in full (rich cut
    them at 80 columns). `keys retire` with the version `keys list` shows for the
    blind-index key says what that version is and which versions can be retired."""
    assert _cli(new_database_url, tmp_path, "db", "upgrade")[0] == 0
    assert _cli(new_database_url, tmp_path, "seed-demo")[0] == 0
    code, out = _cli(new_database_url, tmp_path, "users", "list")
    assert code == 0, out
    assert "…" not in out and max(len(line) for line in out.splitlines()) > 80
    assert "nadia.okonkwo@riverton-defender.example" in out
    assert "Riverton County Prosecuting Attorney" in out
    code, out = _cli(new_database_url, tmp_path, "participants", "list")
    assert code == 0 and "…" not in out and "Harbor LEAD Case Management" in out

    assert _cli(new_database_url, tmp_path, "keys", "rotate")[0] == 0
    code, out = _cli(new_database_url, tmp_path, "keys", "list", "--json")
    versions = {k["version"]: k["purpose"] for k in json.loads(out)["keys"]}
    blind = next(v for v, purpose in versions.items() if purpose == "blind_index")
    old_field, current = sorted(v for v, purpose in versions.items() if purpose == "field")
    code, out = _cli(new_database_url, tmp_path, "keys", "list")
    assert code == 0 and "…" not in out and "blind_index" in out and "+00:00" in out

    code, out = _cli(new_database_url, tmp_path, "keys", "retire", str(blind))
    assert code == 1
    assert f"version {blind} is the blind-index key" in out
    assert f"can be: {old_field}" in out and "there is no data key" not in out
    code, out = _cli(new_database_url, tmp_path, "keys", "retire", "99")
    assert code == 1 and "there is no data key version 99" in out
    assert _cli(new_database_url, tmp_path, "keys", "reencrypt")[0] == 0
    code, out = _cli(new_database_url, tmp_path, "keys", "retire", str(old_field))
    assert code == 0 and f"Data key version {old_field} is retired." in out
    code, out = _cli(new_database_url, tmp_path, "keys", "retire", str(blind))
    assert code == 1 and "can be: none" in out
    assert current > old_field
