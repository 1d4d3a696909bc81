"""ASGI entry point for `portal serve` workers (uvicorn imports this in each worker)."""

from __future__ import annotations

from litestar import Litestar

from portal.config import Settings
from portal.web.app import create_app


def app_from_environment() -> Litestar:
    return create_app(Settings.from_env())
