"""The participant page under load (authorized, audited, PostgreSQL, 10,000 participants),
beside /healthz in the same run, against `portal serve` as deployed (its own processes, so the
load generator does not share their interpreter). `--participants N --seconds S --clients C
--workers W` to change it."""

from __future__ import annotations

import argparse
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select, text

from portal.config import Settings
from portal.db import migrate
from portal.db import models as m
from portal.db.engine import make_engine, make_session_factory
from portal.services.seed import generate_participants, seed_demo
from portal.services.wiring import Services
from portal.web.sessions import SessionManager

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load(base: str, paths: list[str], cookie: str, clients: int,
          seconds: float) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    errors = []

    def worker() -> None:
        rng = random.Random()
        local = []
        with httpx.Client(base_url=base, cookies={"portal_session": cookie},
                          timeout=30) as client:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                response = client.get(rng.choice(paths))
                local.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors.append(response.status_code)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. HTTP {errors[0]}")
    return latencies


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


def _row(name: str, latencies: list[float], seconds: float) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1e3
    p99 = ordered[int(0.99 * (len(ordered) - 1))] * 1e3
    rate = len(ordered) / seconds
    print(f"{name:<22}{rate:>10.0f}{p50:>10.1f}{p99:>10.1f}")
    return rate, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_workspace")
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="server worker processes (default: one per core)")
    args = parser.parse_args(sys.argv[1:])

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
                page = _row("participant page", _load(
                    base, [f"/participants/{i}" for i in ids], token, args.clients,
                    args.seconds), args.seconds)
                health = _row("/healthz", _load(base, ["/healthz"], token, args.clients,
                                                 args.seconds), args.seconds)
                print(f"participant page p99 / healthz p99: {page[2] / health[2]:.1f}; "
                      f"throughput ratio {page[0] / health[0]:.2f}")
                print("Target: participant page p99 under 50 ms at 20 clients.")
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
