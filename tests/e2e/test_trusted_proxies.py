"""Forwarded addresses are believed only from the proxies named in PORTAL_TRUSTED_PROXIES
(issue 20, item 4): `portal serve`'s own uvicorn configuration, serving on a real socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.cli import server_config
from portal.config import Settings, SettingsError
from portal.db import models as m
from tests.e2e.pages import csrf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serving(app_settings: Settings, monkeypatch: pytest.MonkeyPatch,
             trusted: str) -> Iterator[str]:
    port = _free_port()
    environment = {"PORTAL_ENV": "test", "PORTAL_DATABASE_URL": app_settings.database_url,
                   "PORTAL_DATA_DIR": str(app_settings.data_dir),
                   "PORTAL_DATA_KEY_FILE": str(app_settings.data_key_file),
                   "PORTAL_DEV_IDP": "false", "PORTAL_PORT": str(port),
                   "PORTAL_TRUSTED_PROXIES": trusted}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    server = uvicorn.Server(server_config(Settings.from_env()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _failed_sign_in_address(base: str, demo: sessionmaker[Session]) -> str | None:
    with httpx.Client(base_url=base) as client:
        token = csrf(client.get("/me/login").text)
        response = client.post("/me/login", data={
            "username": "marcus", "passphrase": "not the passphrase", "_csrf_token": token},
            headers={"x-forwarded-for": "203.0.113.77"})
        assert response.status_code < 500
    with demo() as s:
        return s.scalars(select(m.AuditEvent.client_address).where(
            m.AuditEvent.action == "auth:login:failure").order_by(m.AuditEvent.seq.desc())
        ).first()


@pytest.fixture
def untrusted(app_settings: Settings, demo: sessionmaker[Session],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from _serving(app_settings, monkeypatch, "")


@pytest.fixture
def trusted(app_settings: Settings, demo: sessionmaker[Session],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from _serving(app_settings, monkeypatch, "127.0.0.1")


def test_a_forwarded_address_from_anyone_else_is_ignored(
        untrusted: str, demo: sessionmaker[Session]) -> None:
    assert _failed_sign_in_address(untrusted, demo) == "127.0.0.1"


def test_a_named_proxy_is_believed(trusted: str, demo: sessionmaker[Session]) -> None:
    assert _failed_sign_in_address(trusted, demo) == "203.0.113.77"


def test_a_proxy_setting_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(SettingsError, match="PORTAL_TRUSTED_PROXIES"):
        Settings(env="test", trusted_proxies="10.0.0.5, proxy.internal")
    assert [str(n) for n in Settings(env="test", trusted_proxies="10.0.0.5, 10.1.0.0/16")
            .proxy_networks()] == ["10.0.0.5/32", "10.1.0.0/16"]
