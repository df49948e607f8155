"""Shared pytest configuration: real-service fixtures come from the tests.services plugin."""

pytest_plugins = ["tests.services"]
