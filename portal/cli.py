"""The `portal` command: serve, demo, database migrations, demo data and operator tools."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from portal.admin import keys as key_service
from portal.auth.oidc import load_providers, tls_context
from portal.auth.service import ENROLMENT_CODE_HOURS, issue_enrolment_code
from portal.cli_audit import audit
from portal.config import LOOPBACK, Settings, SettingsError
from portal.consents.service import consent_summaries
from portal.crypto import local_tls
from portal.crypto.keys import write_key_file
from portal.db import migrate
from portal.db import repositories as repo
from portal.db.audit_chain import (
    AuditKeyError,
    AuditWriteError,
    rotate_signing_key,
    write_signing_key,
)
from portal.db.engine import make_engine, make_session_factory
from portal.db.models import CareTeamMember, Organization, Participant, StaffUser
from portal.db.types import utcnow
from portal.devtools.seed import (
    DEV_ISSUER_PATH,
    DemoAlreadySeeded,
    generate_participants,
    repoint_dev_personas,
    seed_demo,
)
from portal.domain.audit import AuditAction
from portal.domain.permissions import Permission
from portal.domain.vocabulary import Action, DataCategory, Purpose
from portal.kernel.access import user_may
from portal.kernel.events import request_event
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.policy.casbin_policy import PolicyFileError

if TYPE_CHECKING:
    import uvicorn

err = Console(stderr=True)
# The width a table may take when stdout is not a terminal: wider than any row.
TABLE_WIDTH_UNLIMITED = 100_000


def fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on stderr, then a non-zero exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except SettingsError as exc:
                fail(str(exc))
        return self._settings

    @property
    def engine(self) -> Engine:
        """The engine, after checking that the database answers."""
        if self._engine is None:
            engine = make_engine(self.settings)
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
            except SQLAlchemyError as exc:
                cause = getattr(exc, "orig", None) or exc
                first_line = (str(cause).splitlines() or [""])[0]
                fail(f"PORTAL_DATABASE_URL: cannot connect to the database "
                     f"({type(cause).__name__}: {first_line})")
            self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def services(self) -> Services:
        try:
            return Services.build(self.settings, make_session_factory(self.engine))
        except PolicyFileError as exc:
            fail(f"the role policy in {self.settings.policies_dir} cannot be used, so the "
                 f"portal does not start: {exc}")

    def require_current_schema(self) -> None:
        current, head = migrate.current_revision(self.engine), migrate.head_revision(self.engine)
        if current != head:
            fail(f"the database schema is at {current or 'nothing'}, expected {head}: "
                 "run `portal db upgrade`")

    @contextmanager
    def session(self) -> Iterator[Any]:
        self.require_current_schema()
        with make_session_factory(self.engine).begin() as session:
            yield session


pass_ctx = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """LEAD Partner Portal. Settings come from PORTAL_* environment variables (see README)."""
    ctx.obj = Context()
    ctx.call_on_close(ctx.obj.close)


# --- serving -------------------------------------------------------------------------------


def server_config(settings: Settings, *, host: str | None = None, port: int | None = None,
                  workers: int = 1) -> uvicorn.Config:
    """How `portal serve` runs uvicorn. Forwarded headers are believed only from the proxies
    named in PORTAL_TRUSTED_PROXIES: from anyone else they would let a client choose the address
    the rate limit counts and the audit log records."""
    import uvicorn

    served = settings.serving(host=host, port=port)
    proxies = [str(n) for n in settings.proxy_networks()]
    return uvicorn.Config("portal.web.asgi:app_from_environment", factory=True,
                          host=served.host, port=served.port,
                          workers=workers, proxy_headers=bool(proxies),
                          forwarded_allow_ips=proxies or [], server_header=False,
                          log_level="info")


def _serve(obj: Context, host: str | None, port: int | None, workers: int) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = obj.settings
    served = settings.serving(host=host, port=port)
    try:  # identity providers that cannot be used (http in production): one line, no server
        load_providers(served)
        tls_context(served)
    except SettingsError as exc:
        fail(str(exc))
    obj.require_current_schema()
    obj.services()  # refuses a policy that cannot be used, before anything listens
    public = "" if served.base_url_derived else f", public URL {served.base_url}"
    click.echo(f"LEAD Partner Portal on http://{served.host}:{served.port} "
               f"({settings.env}, {obj.engine.url.get_backend_name()}{public})")
    # The app (in each worker) reads its settings from the environment: it must serve the
    # same address as uvicorn, so that its base URL (sign-in redirects, the development
    # provider's issuer) names the port actually served.
    os.environ["PORTAL_HOST"], os.environ["PORTAL_PORT"] = served.host, str(served.port)
    config = server_config(settings, host=host, port=port, workers=workers)
    if workers == 1:
        uvicorn.Server(config).run()
        return
    Multiprocess(config, sockets=[listening_socket(config)]).run()


def listening_socket(config: Any) -> socket.socket:
    """The socket uvicorn's workers share, with Nagle's algorithm off. uvicorn makes it as a
    plain socket whose accepted connections asyncio does not recognise as TCP, so they keep
    Nagle on: every keep-alive response then waits about 40 ms for a delayed ACK. Accepted
    connections inherit TCP_NODELAY from the listening socket."""
    sock: socket.socket = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@main.command()
@click.option("--host", help="Interface to listen on (default PORTAL_HOST).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default PORTAL_PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@pass_ctx
def serve(obj: Context, host: str | None, port: int | None, workers: int) -> None:
    """Serve the portal (the schema must be current)."""
    _serve(obj, host, port, workers)


@main.command()
@click.option("--port", type=click.IntRange(1, 65535),
              help="Port (default PORTAL_PORT, else 8000).")
@pass_ctx
def demo(obj: Context, port: int | None) -> None:
    """Create, migrate and seed the demo database (if empty), then serve it."""
    settings = obj.settings
    if settings.is_production:
        fail("PORTAL_ENV: `portal demo` is for development; use `portal serve` in production")
    served = settings.serving(port=port)
    public = urlsplit(served.base_url)
    if (not served.base_url_derived and public.hostname in LOOPBACK
            and (public.port or 80) != served.port):
        click.echo(f"warning: PORTAL_BASE_URL is {served.base_url} but the demo serves port "
                   f"{served.port}: staff sign-in goes to the base URL", err=True)
    migrate.upgrade(obj.engine, settings=settings)
    services = obj.services()
    issuer = _dev_issuer(served)
    try:
        with make_session_factory(obj.engine).begin() as session:
            counts = seed_demo(session, issuer=issuer, vault=services.vault)
        click.echo("Seeded the demo: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    except DemoAlreadySeeded:
        click.echo("Demo data already present.")
        _follow_dev_issuer(obj, issuer)
    _serve(obj, None, port, 1)


def _dev_issuer(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + DEV_ISSUER_PATH


def _follow_dev_issuer(obj: Context, issuer: str) -> None:
    """A demo seeded on another port keeps working: its personas follow the development
    provider to the address served now (staff accounts are keyed by issuer and subject)."""
    with make_session_factory(obj.engine).begin() as session:
        moved = repoint_dev_personas(session, issuer)
    if moved:
        click.echo(f"The demo personas now sign in through {issuer}.")


# --- database ------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_ctx
def db_upgrade(obj: Context, revision: str) -> None:
    """Upgrade the schema to REVISION (default: head)."""
    migrate.upgrade(obj.engine, revision, obj.settings)
    click.echo(f"Database schema at {migrate.current_revision(obj.engine)}.")


# A relative revision (-1) is a negative number, not an option: unknown options are passed
# on to REVISION.
@db.command("downgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@pass_ctx
def db_downgrade(obj: Context, revision: str) -> None:
    """Downgrade the schema to REVISION ('-1' for one step, 'base' for an empty database)."""
    migrate.downgrade(obj.engine, revision, obj.settings)
    click.echo(f"Database schema at {migrate.current_revision(obj.engine) or 'base'}.")


@db.command("current")
@pass_ctx
def db_current(obj: Context) -> None:
    """Print the current schema revision and the newest one."""
    click.echo(f"current: {migrate.current_revision(obj.engine) or 'base'}")
    click.echo(f"head:    {migrate.head_revision(obj.engine)}")


# --- demo data -----------------------------------------------------------------------------


@main.command("seed-demo")
@click.option("--participants", "count", type=click.IntRange(0, 1_000_000), default=0,
              help="Also generate this many synthetic participants (for benchmarks).")
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=1000, show_default=True)
@pass_ctx
def seed_demo_command(obj: Context, count: int, batch_size: int) -> None:
    """Seed the fictional demo site; with --participants N, add N synthetic participants."""
    if obj.settings.is_production:
        fail("PORTAL_ENV: demo data cannot be seeded in production")
    obj.require_current_schema()
    services = obj.services()
    try:
        with obj.session() as session:
            counts = seed_demo(session, issuer=_dev_issuer(obj.settings),
                               vault=services.vault)
        click.echo("Seeded the demo: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    except DemoAlreadySeeded:
        click.echo("Demo data already present; not seeded again.")
        _follow_dev_issuer(obj, _dev_issuer(obj.settings))
    if count:
        factory = make_session_factory(obj.engine)
        with Progress(console=err, transient=False) as progress:
            task = progress.add_task("Synthetic participants", total=count)
            generate_participants(factory, services.vault, count, batch_size=batch_size,
                                  progress=lambda n: progress.advance(task, n))
        click.echo(f"Added {count} synthetic participants.")


# --- listings ------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Staff users."""


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def users_list(obj: Context, as_json: bool) -> None:
    """List staff users with their organization and roles."""
    with obj.session() as session:
        rows = [{"email": u.email, "name": u.display_name, "organization": u.organization.name,
                 "sector": u.organization.sector, "roles": u.role_names}
                for u in session.scalars(select(StaffUser).order_by(StaffUser.email))]
    _print(rows, as_json, ["email", "name", "organization", "sector", "roles"])


@main.group()
def participants() -> None:
    """Participants."""


@participants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many.")
@pass_ctx
def participants_list(obj: Context, as_json: bool, limit: int | None) -> None:
    """List participants with their current care team (operator tool: shows names).

    Each participant shown is audited (participant:view, actor cli:<OS user>) before anything
    is printed; if the events cannot be written, nothing is."""
    services = obj.services()
    vault = services.vault
    with audited_read(), obj.session() as session:
        people = list(session.scalars(
            select(Participant).order_by(Participant.public_id).limit(limit)))
        teams: dict[Any, list[str]] = {p.id: [] for p in people}
        links = session.execute(
            select(CareTeamMember.participant_id, Organization.name)
            .join(Organization, Organization.id == CareTeamMember.organization_id)
            .where(CareTeamMember.participant_id.in_(teams), CareTeamMember.end_date.is_(None))
            .order_by(Organization.name))
        for pid, name in links:
            teams[pid].append(name)
        rows = [{"id": p.public_id, "display_name": vault.open_participant(p).display,
                 "care_team": teams[p.id]} for p in people]
        meta = _cli_meta()
        services.audit.append_many(session, [request_event(
            AuditAction.PARTICIPANT_VIEW, meta, participant_id=p.id,
            detail={"command": "participants list", "shown": ["display_name", "care_team"]})
            for p in people])
    _print(rows, as_json, ["id", "display_name", "care_team"])


@participants.command("issue-code")
@click.argument("public_id")
@click.option("--by", "email", required=True, help="The case manager issuing it (email).")
@pass_ctx
def participants_issue_code(obj: Context, public_id: str, email: str) -> None:
    """Issue a one-time sign-in code (also resets the participant's sign-in)."""
    services = obj.services()
    with audited_read(), obj.session() as session:
        participant = repo.participant_by_public_id(session, public_id)
        if participant is None:
            fail(f"no participant with id {public_id!r}", 2)
        user = repo.staff_by_email(session, email)
        if user is None or not user_may(services.policy, user,
                                        Permission.SIGN_IN_CODE_CREATE):
            fail(f"{email!r} may not issue sign-in codes (policies/policy.csv)", 2)
        code = issue_enrolment_code(session, services.audit, participant, user,
                                    RequestMeta(actor=user.email))
    click.echo(f"One-time code for {participant.public_id}: {code}")
    click.echo(f"It works once, for {ENROLMENT_CODE_HOURS} hours, at /me/enrol.")


def _print(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(", ".join(v) if isinstance(v, list) else str(v)
                        for v in (row[c] for c in columns)))
    console = Console()
    if not console.is_terminal:
        # Piped or redirected: nothing is cut to fit a screen (rich assumes 80 columns).
        console = Console(width=TABLE_WIDTH_UNLIMITED)
    console.print(table)


# --- access decisions and consents ---------------------------------------------------------


def _cli_meta() -> RequestMeta:
    """The operator, as the audit log names them: ``cli:<OS user>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers)
        user = str(os.getuid())
    return RequestMeta(actor=f"cli:{user}")


@contextmanager
def audited_read() -> Iterator[None]:
    """Fail closed: a read whose audit event cannot be written (or committed) shows nothing
    and exits 1 with one line."""
    try:
        yield
    except AuditWriteError as exc:
        fail(f"the audit log could not record this read, so nothing is shown ({exc})")
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        fail(f"database: {type(cause).__name__}: {(str(cause).splitlines() or [''])[0]} "
             "(nothing is shown)")


@main.group()
def access() -> None:
    """The access decision."""


@access.command("explain")
@click.option("--user", "email", required=True, help="Staff user's email.")
@click.option("--participant", "public_id", required=True, help="Participant id, e.g. LP-1001.")
@click.option("--category", type=click.Choice([c.value for c in DataCategory]), required=True)
@click.option("--purpose", type=click.Choice([p.value for p in Purpose]), default="CAREMGT",
              show_default=True)
@click.option("--action", "action_name", type=click.Choice([a.value for a in Action]),
              default="view", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def access_explain(obj: Context, email: str, public_id: str, category: str, purpose: str,
                   action_name: str, as_json: bool) -> None:
    """Explain whether a user may see a category of a participant's information, and why."""
    services = obj.services()
    with audited_read(), obj.session() as session:
        user = repo.staff_by_email(session, email)
        if user is None:
            fail(f"no staff user with email {email!r}", 2)
        participant = repo.participant_by_public_id(session, public_id)
        if participant is None:
            fail(f"no participant with id {public_id!r}", 2)
        explanation = services.access.explain(
            session, user, participant, DataCategory(category), Purpose(purpose),
            Action(action_name), _cli_meta())
    if as_json:
        click.echo(json.dumps(explanation.as_json(), indent=2))
    else:
        click.echo(explanation.text())


@main.group()
def consents() -> None:
    """Consent directives."""


@consents.command("list")
@click.option("--participant", "public_id", required=True, help="Participant id, e.g. LP-1001.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def consents_list(obj: Context, public_id: str, as_json: bool) -> None:
    """List a participant's consents with their provisions (status as of now)."""
    services = obj.services()
    with audited_read(), obj.session() as session:
        participant = repo.participant_by_public_id(session, public_id)
        if participant is None:
            fail(f"no participant with id {public_id!r}", 2)
        rows = consent_summaries(session, participant.id, at=utcnow())
        services.audit.append(session, request_event(
            AuditAction("consent:view"), _cli_meta(), participant_id=participant.id,
            consent_ids=tuple(r["id"] for r in rows)))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    _print([{**r, "provisions": str(len(r["provisions"]))} for r in rows], False,
           ["id", "kind", "status", "expires", "revocable_after", "provisions"])


main.add_command(audit)


# --- keys ----------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Encryption keys: generate, rotate, re-encrypt, retire."""


@keys.command("generate-data-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keys_generate_data_key(path: Path) -> None:
    """Write a new key-encryption key (for PORTAL_DATA_KEY_FILE) to PATH (mode 0600)."""
    if path.exists():
        fail(f"{path} exists; refusing to overwrite a key", 2)
    write_key_file(path)
    click.echo(f"Wrote a data key-encryption key to {path}. Keep a copy offline.")


@keys.command("generate-audit-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keys_generate_audit_key(path: Path) -> None:
    """Write a new Ed25519 audit signing key (for PORTAL_AUDIT_SIGNING_KEY_FILE) to PATH."""
    if path.exists():
        fail(f"{path} exists; refusing to overwrite a key", 2)
    write_signing_key(path)
    # The (empty) file where `rotate-audit-key` keeps old public keys, so that a deployment
    # can mount it from the start (docker-compose.yml does).
    retired = path.with_name(path.name + ".retired.jsonl")
    retired.touch(mode=0o644, exist_ok=True)
    click.echo(f"Wrote an audit signing key to {path} (and {retired.name}, for the public keys "
               "of rotated keys).")


@keys.command("local-tls")
@click.option("--ca-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help=f"Where {local_tls.CA_CERT} goes (for PORTAL_OIDC_CA_FILE).")
@click.option("--server-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help=f"Where {local_tls.SERVER_CERT} and {local_tls.SERVER_KEY} go.")
@click.argument("names", nargs=-1, required=True)
def keys_local_tls(ca_dir: Path, server_dir: Path, names: tuple[str, ...]) -> None:
    """A local CA and a TLS server certificate for NAMES (host names or addresses), for a
    self-contained stack (docker-compose.yml). Files that are still good are kept."""
    try:
        written = local_tls.ensure(ca_dir, server_dir, names)
    except (local_tls.LocalTLSError, OSError) as exc:
        fail(str(exc), 2)
    if written:
        click.echo(f"Wrote a new local CA ({ca_dir / local_tls.CA_CERT}; its key is not kept) "
                   f"and a server certificate for {', '.join(names)} in {server_dir}.")
    else:
        click.echo(f"Kept the certificates in {ca_dir} and {server_dir}: still valid for "
                   f"{', '.join(names)}.")


@keys.command("rotate-audit-key")
@pass_ctx
def keys_rotate_audit_key(obj: Context) -> None:
    """Replace the audit signing key (PORTAL_AUDIT_SIGNING_KEY_FILE) with a new one, keeping
    the old public key (PORTAL_AUDIT_RETIRED_KEYS_FILE) so that older checkpoints still
    verify. Restart the portal and the checkpoint signer afterwards."""
    try:
        old, new, retired = rotate_signing_key(obj.settings)
    except AuditKeyError as exc:
        fail(str(exc))
    click.echo(f"The audit signing key is now {new}; the old key {old} is kept for "
               f"verification in {retired}.")
    click.echo("Restart the portal and the checkpoint signer to sign with the new key; export "
               "the checkpoints (`portal audit checkpoints export FILE`): each record carries "
               "its public key.")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def keys_list(obj: Context, as_json: bool) -> None:
    """Data key versions (never the keys themselves) and rows still under old versions."""
    services = obj.services()
    with obj.session() as session:
        rows = key_service.key_versions(session)
        waiting = key_service.pending(session, services.vault)
    if as_json:
        click.echo(json.dumps({"keys": rows, "pending": waiting}, indent=2))
        return
    _print(rows, False, ["version", "purpose", "kek_id", "created_at", "retired_at"])
    click.echo(f"Rows under older versions: {sum(waiting.values())}")


@keys.command("rotate")
@pass_ctx
def keys_rotate(obj: Context) -> None:
    """Make a new data key version; new values use it at once (running portals within a
    minute). Then run `portal keys reencrypt`."""
    services = obj.services()
    with obj.session() as session:
        version = key_service.rotate(session, services.vault)
    click.echo(f"Data key version {version} is now current. Run `portal keys reencrypt`.")


@keys.command("reencrypt")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True)
@pass_ctx
def keys_reencrypt(obj: Context, batch_size: int) -> None:
    """Re-encrypt values under older key versions (resumable; safe while serving)."""
    services = obj.services()
    factory = make_session_factory(obj.engine)
    with obj.session() as session:
        total = sum(key_service.pending(session, services.vault).values())
    with Progress(console=err) as progress:
        task = progress.add_task("Re-encrypting", total=total)
        done = key_service.reencrypt(factory, services.vault, batch_size=batch_size,
                                     progress=lambda n: progress.advance(task, n))
    click.echo(f"Re-encrypted {done} rows.")


@keys.command("retire")
@click.argument("version", type=int)
@pass_ctx
def keys_retire(obj: Context, version: int) -> None:
    """Retire an old data key version once nothing is encrypted under it."""
    services = obj.services()
    try:
        with obj.session() as session:
            key_service.retire(session, services.vault, version)
    except key_service.KeyRotationError as exc:
        fail(str(exc))
    click.echo(f"Data key version {version} is retired.")
