"""A database that does not answer is a 503 however the driver says so; other database
errors stay a 500 (portal.web.app._database_error)."""

from __future__ import annotations

import psycopg
import pytest
from litestar.testing import RequestFactory
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError

from portal.web.app import _database_error


def _chained() -> ProgrammingError:
    """What a pool ping of a dropped PostgreSQL connection raised in CI: the ping's
    "connection socket closed", then "can't change 'autocommit' now" while recovering."""
    try:
        try:
            raise psycopg.OperationalError("connection socket closed")
        except psycopg.OperationalError:
            raise psycopg.ProgrammingError("can't change 'autocommit' now") from None
    except psycopg.ProgrammingError as driver:
        driver.__context__ = psycopg.OperationalError("connection socket closed")
        return ProgrammingError("ping", {}, driver)


@pytest.mark.parametrize(("error", "status"), [
    (OperationalError("SELECT 1", {}, psycopg.OperationalError("refused")), 503),
    (_chained(), 503),
    (DataError("SELECT 1", {}, psycopg.DataError("integer out of range")), 500),
    (ProgrammingError("SELECT 1", {}, psycopg.ProgrammingError("syntax error")), 500),
])
def test_only_a_database_that_does_not_answer_is_a_503(error: Exception, status: int) -> None:
    request = RequestFactory().get("/api/v1/participants")
    response = _database_error(request, error)
    assert response.status_code == status
