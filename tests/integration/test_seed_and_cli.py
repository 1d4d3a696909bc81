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
from portal.db.models import (
    CareTeamMember,
    Consent,
    Goal,
    Organization,
    Participant,
    Record,
    StaffRole,
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
