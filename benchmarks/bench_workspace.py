"""The participant page under load (authorized, audited, PostgreSQL, 10,000 participants),
beside /healthz in the same run, driven by wrk against `portal serve` as deployed (its own
processes). `--participants N --seconds S --clients C --workers W` to change it (run as
`python -m benchmarks.bench_workspace ...`)."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select, text

from portal.auth.sessions import SessionManager
from portal.config import Settings
from portal.db import migrate
from portal.db import models as m
from portal.db.engine import make_engine, make_session_factory
from portal.devtools.seed import generate_participants, seed_demo
from portal.kernel.wiring import Services

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# wrk (C, event loop) generates the load: a Python generator on the same two cores was the
# limit for /healthz, so it could not show what the server itself costs.
WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass(frozen=True, slots=True)
class Load:
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float


def _load(base: str, paths: list[str], cookie: str, clients: int, seconds: float,
          tmp: Path) -> Load:
    """`clients` keep-alive connections, each sending the next request when the last is
    answered (one wrk thread, to leave the cores to the server)."""
    script, listing = tmp / "bench.lua", tmp / "paths.txt"
    script.write_text(WRK_SCRIPT)
    listing.write_text("\n".join(paths) + "\n")
    done = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds:.0f}s", "--timeout", "30s",
         "-H", f"Cookie: portal_session={cookie}", "-s", str(script), base],
        env={**os.environ, "BENCH_PATHS": str(listing)}, capture_output=True, text=True,
        check=True)
    result = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    requests, duration_us, p50_us, p99_us, errors = map(int, result.split()[1:])
    if errors or not requests:
        raise SystemExit(f"{errors} of {requests} requests failed:\n{done.stdout}")
    return Load(requests / (duration_us / 1e6), p50_us / 1e3, p99_us / 1e3)


def _wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"portal serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("portal serve did not become healthy in 60 s")


def _row(name: str, load: Load) -> Load:
    print(f"{name:<22}{load.rate:>10.0f}{load.p50_ms:>10.1f}{load.p99_ms:>10.1f}")
    return load


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_workspace")
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server worker processes (default: one per core)")
    args = parser.parse_args(sys.argv[1:])
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `bash scripts/ensure-test-tools.sh bench` installs it")

    name = f"portal_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            port = _free_port()
            env = {**os.environ, "PORTAL_ENV": "test", "PORTAL_DATA_DIR": tmp,
                   "PORTAL_DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
                   "PORTAL_SECRET_KEY": secrets.token_urlsafe(32), "PORTAL_DEV_IDP": "0",
                   "PORTAL_HOST": "127.0.0.1", "PORTAL_PORT": str(port)}
            settings = Settings.from_env(env)
            engine = make_engine(settings)
            migrate.upgrade(engine, settings=settings)
            factory = make_session_factory(engine)
            services = Services.build(settings, factory)
            with factory.begin() as session:
                seed_demo(session, issuer="http://bench/dev-idp", vault=services.vault)
            print(f"seeding {args.participants} participants...", flush=True)
            generate_participants(factory, services.vault, args.participants, seed=2)
            with factory.begin() as session:
                ids = list(session.scalars(select(m.Participant.public_id)))
                user = session.scalar(select(m.StaffUser).where(
                    m.StaffUser.email == "maria.lopez@harbor-lead.example"))
                assert user is not None
                token = SessionManager(settings, services.audit).start(
                    session, staff_user_id=user.id)
            engine.dispose()
            log = Path(tmp) / "serve.log"
            with log.open("wb") as out:
                server = subprocess.Popen(
                    [sys.executable, "-m", "portal", "serve", "--workers", str(args.workers)],
                    env=env, stdout=out, stderr=subprocess.STDOUT)
            try:
                base = f"http://127.0.0.1:{port}"
                _wait_healthy(base, server, log)
                print(f"{args.clients} clients, {args.seconds:.0f} s each, on loopback; "
                      f"server: portal serve --workers {args.workers}")
                print(f"{'endpoint':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
                pages = [f"/participants/{i}" for i in ids]
                page = _row("participant page",
                            _load(base, pages, token, args.clients, args.seconds, Path(tmp)))
                health = _row("/healthz", _load(base, ["/healthz"], token, args.clients,
                                                args.seconds, Path(tmp)))
                print(f"participant page p99 / healthz p99: {page.p99_ms / health.p99_ms:.1f}; "
                      f"throughput ratio {page.rate / health.rate:.2f}")
                print("Target: participant page p99 under 50 ms at 20 clients.")
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
