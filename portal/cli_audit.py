"""`portal audit ...`: verify the audit log, export it and its checkpoints, account for disclosures.

Every command that reads the log records that read in the log before it shows anything
(DESIGN section 5), as actor ``cli:<os user>``; ``verify`` checks the chain before it records
itself, so that its own event never leads to a checkpoint over what it has not checked. Errors
print one line, ``error: ...``, and exit 1; usage errors exit 2; ``verify`` exits 1 when the log
is damaged.
"""

from __future__ import annotations

import getpass
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, NoReturn

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from portal.compliance import console, exports
from portal.compliance.console import Requester
from portal.config import Settings, SettingsError
from portal.db import audit_chain as service
from portal.db import migrate
from portal.db.audit_chain import AuditLog, AuditWriteError
from portal.db.engine import make_engine, make_session_factory
from portal.domain.audit import (
    REVOCATION_TEXT,
    AuditAction,
    Checkpoint,
    escape_for_display,
    key_id_of,
)

err = Console(stderr=True)


class CommandError(Exception):
    """A failure to report as one ``error:`` line and exit 1."""


def _fail(message: str) -> NoReturn:
    raise CommandError(message)


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"


class AuditContext:
    """Settings, database and audit log, made on first use and closed with the command."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None
        self._log: AuditLog | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings.from_env()
            except SettingsError as exc:
                _fail(str(exc))
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            engine = make_engine(self.settings)
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                current, head = migrate.current_revision(engine), migrate.head_revision(engine)
            except SQLAlchemyError as exc:
                engine.dispose()
                _fail(f"PORTAL_DATABASE_URL: cannot connect to the database ({_first_line(exc)})")
            if current != head:
                engine.dispose()
                _fail(f"the database schema is at {current or 'nothing'}, expected {head}: "
                      "run `portal db upgrade`")
            self._engine = engine
        return self._engine

    @property
    def factory(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @property
    def log(self) -> AuditLog:
        if self._log is None:
            try:
                self._log = AuditLog(self.settings)
            except AuditWriteError as exc:
                _fail(str(exc))
        return self._log

    @property
    def requester(self) -> Requester:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no passwd entry (containers)
            user = str(os.getuid())
        return Requester(actor=f"cli:{user}")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_audit = click.make_pass_decorator(AuditContext)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except CommandError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except AuditWriteError as exc:
        click.echo(f"error: the audit log could not record this read, so nothing is shown "
                   f"({exc})", err=True)
        raise SystemExit(1) from None
    except SQLAlchemyError as exc:
        click.echo(f"error: database: {_first_line(exc)}", err=True)
        raise SystemExit(1) from None


@click.group()
@click.pass_context
def audit(ctx: click.Context) -> None:
    """The tamper-evident audit log: verify, export, accounting of disclosures."""
    ctx.obj = AuditContext()
    ctx.call_on_close(ctx.obj.close)


# --- verify ----------------------------------------------------------------------------------


def read_checkpoints_file(path: Path) -> tuple[list[Checkpoint], dict[str, bytes]]:
    """Checkpoints kept elsewhere, and the public keys listed with them.

    The file is the trust anchor (it was exported and kept out of reach of whoever can write
    the database), so a key it lists is trusted when it matches its key id.
    """
    checkpoints: list[Checkpoint] = []
    keys: dict[str, bytes] = {}
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                cp, key = service.parse_checkpoint_record(json.loads(line))
            except ValueError as exc:
                raise click.BadParameter(f"line {number}: {exc}",
                                         param_hint="--checkpoints") from None
            checkpoints.append(cp)
            if key is not None and key_id_of(key) == cp.key_id:
                keys[cp.key_id] = key
    return checkpoints, keys


UNANCHORED = ("Checked against the database's own checkpoints only: without exported "
              "checkpoints (--checkpoints FILE), truncation and a rewrite from the start "
              "cannot be ruled out.")


@audit.command("verify")
@click.option("--checkpoints", "checkpoints_file", help="Also check checkpoints kept in FILE "
              "(JSON lines from `portal audit checkpoints export`).",
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_audit
def verify_command(obj: AuditContext, checkpoints_file: Path | None, as_json: bool) -> None:
    """Recompute the hash chain and check every checkpoint; exit 1 if the log is damaged.

    The check comes first; only then is the verification itself recorded on the chain, and
    that event may lead to a new signed checkpoint only when the chain was found intact."""
    extra, file_keys = read_checkpoints_file(checkpoints_file) if checkpoints_file else ([], {})
    with _errors():
        keys = {**file_keys, **obj.log.public_keys}
        with obj.factory() as session:
            total = service.count_events(session)
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("Verifying the audit log", total=total)
            result = service.verify(obj.factory, keys, extra,
                                    progress=lambda n: progress.advance(task, n))
        # Recorded before the result is shown (a read of the log); never signs over damage.
        with obj.factory.begin() as session:
            obj.log.append(session, obj.requester.event(AuditAction.AUDIT_VERIFY, detail={
                "checkpoints_file": checkpoints_file is not None,
                "exported_checkpoints": len(extra), **result.as_json()}), sign=result.ok,
                trusted=extra)
    warning = None if checkpoints_file else UNANCHORED
    if as_json:
        click.echo(json.dumps({**result.as_json(), "exported_checkpoints": len(extra),
                               "warning": warning}))
    elif result.ok:
        click.echo(f"Audit log intact: {result.events} events, "
                   f"{result.checkpoints} checkpoints verified"
                   + (f" ({len(extra)} from {checkpoints_file})." if checkpoints_file else "."))
    else:
        damage = result.damage.value if result.damage else "unknown"
        click.echo(f"Audit log DAMAGED: {damage} at seq {result.first_bad_seq} "
                   f"(chain {result.chain}); {result.events} events read.")
    if warning and not as_json:
        click.echo(warning)
    click.get_current_context().exit(0 if result.ok else 1)


# --- checkpoints ------------------------------------------------------------------------------


@audit.group("checkpoints")
def checkpoints_group() -> None:
    """Signed checkpoints over the chain head."""


@checkpoints_group.command("export")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--every", type=click.IntRange(min=1), metavar="SECONDS",
              help="Keep running and export again every SECONDS (a deployment's scheduler).")
@pass_audit
def checkpoints_export(obj: AuditContext, file: Path, every: int | None) -> None:
    """Append the checkpoints not yet in FILE, with their public key and export time, as JSON
    lines ('-' for stdout). FILE is never overwritten: earlier checkpoints stay in it, and
    they are the evidence against a later rewrite of the log."""
    while True:
        _export_once(obj, file)
        if every is None:
            return
        time.sleep(every)


def _export_once(obj: AuditContext, file: Path) -> None:
    to_stdout = str(file) == "-"
    with _errors():
        try:
            already = [] if to_stdout or not file.exists() else read_checkpoints_file(file)[0]
        except click.BadParameter as exc:
            _fail(f"{file} is not a file of exported checkpoints ({exc.message}); nothing was "
                  "appended")
        console.record_read(obj.factory, obj.log, obj.requester,
                            AuditAction.AUDIT_CHECKPOINTS_EXPORT,
                            detail={"already_exported": len(already)})
        with obj.factory() as session:
            records = service.export_checkpoints(session, obj.log.public_keys,
                                                 exported_at=datetime.now(UTC), already=already)
    lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    if to_stdout:
        click.echo(lines, nl=False)
    else:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            with file.open("a", encoding="utf-8") as f:
                if already and not _ends_with_newline(file):
                    f.write("\n")
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            click.echo(f"error: cannot append to {file}: {exc}", err=True)
            raise SystemExit(1) from None
    click.echo(f"Appended {len(records)} new checkpoints ({len(already)} already kept); keep "
               "them where the database's administrators cannot change them.", err=True)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


@checkpoints_group.command("sign")
@click.option("--every", type=click.IntRange(min=1), metavar="SECONDS",
              help="Keep running and sign again every SECONDS (a deployment's scheduler).")
@click.option("--checkpoints", "checkpoints_file", help="Also trust the checkpoints kept in "
              "FILE as the point to verify from (after the stored ones were lost).",
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_audit
def checkpoints_sign(obj: AuditContext, every: int | None,
                     checkpoints_file: Path | None) -> None:
    """Sign the chain head now, if events were written since the last checkpoint.

    Appends sign a checkpoint every PORTAL_AUDIT_CHECKPOINT_EVERY events, or on the first
    event after PORTAL_AUDIT_CHECKPOINT_SECONDS; this signs a quiet log's last events too.
    The head is signed only when the chain verifies back to the last trusted checkpoint.
    """
    trusted, _ = read_checkpoints_file(checkpoints_file) if checkpoints_file else ([], {})
    while True:
        try:
            with _errors(), obj.factory.begin() as session:
                checkpoint = obj.log.checkpoint(session, trusted=trusted)
        except SystemExit:
            if every is None:
                raise
            checkpoint = None  # said on stderr; a scheduler keeps trying
        else:
            click.echo(f"Signed a checkpoint at event {checkpoint.seq}." if checkpoint
                       else "The last event is already signed.", err=True)
        if every is None:
            return
        time.sleep(every)


# --- export -----------------------------------------------------------------------------------


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime | None,
                                                                      datetime | None]:
    """Dates from the command line as [since 00:00 UTC, the day after until 00:00 UTC)."""
    start = since.replace(tzinfo=UTC) if since else None
    end = until.replace(tzinfo=UTC) + timedelta(days=1) if until else None
    if start and end and end <= start:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    return start, end


def _participant(obj: AuditContext, public_id: str) -> uuid.UUID:
    with obj.factory() as session:
        found = service.participant_uuid(session, public_id)
    if found is None:
        _fail(f"--participant: no participant with public id {public_id!r}")
    return found


DATE = click.DateTime(["%Y-%m-%d"])


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "fhir"]), required=True,
              help="csv for people, fhir for NDJSON of FHIR R4 AuditEvent.")
@click.option("--since", type=DATE, help="First day (UTC), YYYY-MM-DD.")
@click.option("--until", type=DATE, help="Last day (UTC, inclusive), YYYY-MM-DD.")
@click.option("--participant", "public_id", help="Only events about this participant (LP-1001).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8", atomic=True),
              default="-", help="Write to this file instead of stdout.")
@pass_audit
def export_command(obj: AuditContext, fmt: str, since: datetime | None, until: datetime | None,
                   public_id: str | None, output: IO[str]) -> None:
    """Stream the audit log as CSV or FHIR NDJSON (the export is itself audited)."""
    start, end = _period(since, until)
    with _errors():
        participant_id = None if public_id is None else _participant(obj, public_id)
        exporter = exports.export_csv if fmt == "csv" else exports.export_fhir_ndjson
        lines = exporter(obj.factory, obj.log, obj.requester, since=start, until=end,
                         participant_id=participant_id)
        if output.name == "<stdout>":
            for line in lines:
                output.write(line)
            return
        with obj.factory() as session:
            total = service.count_events(session, since=start, until=end,
                                         participant_id=participant_id)
        written = 0
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task(f"Exporting to {output.name}", total=total)
            for line in lines:
                output.write(line)
                written += 1
                if written % 1000 == 0:
                    progress.update(task, completed=written)
        click.echo(f"Exported {max(written - (fmt == 'csv'), 0)} events to {output.name}.",
                   err=True)


# --- disclosures ------------------------------------------------------------------------------


@audit.command("disclosures")
@click.option("--participant", "public_id", required=True, help="Participant public id (LP-1001).")
@click.option("--since", type=DATE, help="First day (UTC); at most six years ago (default).")
@click.option("--until", type=DATE, help="Last day (UTC, inclusive); default today.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_audit
def disclosures_command(obj: AuditContext, public_id: str, since: datetime | None,
                        until: datetime | None, as_json: bool) -> None:
    """The accounting of disclosures for one participant (45 CFR 164.528; 42 CFR 2.24)."""
    start, end = _period(since, until)
    with _errors():
        participant_id = _participant(obj, public_id)
        with obj.factory() as session:
            try:
                found = service.disclosures(session, participant_id, start, end)
            except ValueError as exc:
                _fail(str(exc))
        # Shown only once the read of the log is recorded.
        console.record_read(obj.factory, obj.log, obj.requester,
                            AuditAction.AUDIT_DISCLOSURES_VIEW, participant_id=participant_id,
                            detail={"disclosures": len(found)})
    if as_json:
        click.echo(json.dumps([d.as_json() for d in found], indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Disclosures of {public_id}'s information")
    for column in ("date", "recipient", "organization", "roles", "from", "category", "purpose",
                   "basis"):
        table.add_column(column, overflow="fold")  # wrap, never cut off evidence
    for d in found:
        basis = f"consent {', '.join(d.consent_ids)}" if d.basis == "consent" else d.basis
        if d.revocation is not None:  # placed by commit order, not by clock
            basis += f", since revoked: {REVOCATION_TEXT[d.revocation]}"
        cells = [d.date.isoformat(), d.recipient, d.recipient_organization or "",
                 ", ".join(d.recipient_roles), ", ".join(d.disclosers), d.category or "",
                 d.purpose or "", basis]
        # Text, not markup: a stored value must not restyle or rewrite the terminal.
        table.add_row(*(Text(escape_for_display(c)) for c in cells))
    Console().print(table)
