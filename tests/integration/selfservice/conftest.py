"""Fixtures for the self-service tests: the seeded demo."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.devtools.seed import seed_demo
from portal.kernel.wiring import Services


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer="http://127.0.0.1:8000/dev-idp", vault=services.vault)
    return session_factory
