"""Shared pytest configuration: real-service fixtures (tests.services) and ours (tests.fixtures)."""

pytest_plugins = ["tests.services", "tests.fixtures"]
