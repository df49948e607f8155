"""Fixtures shared by the inbound flow tests."""

from tests.inbound.test_ingest import world  # noqa: F401 - re-exported fixture
