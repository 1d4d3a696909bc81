"""Fixtures of the service-level tests (tests/integration/service_support.py)."""

from tests.integration.service_support import demo

__all__ = ["demo"]
