"""Shared pytest setup. Package-specific fixtures live in each tests/<area>/conftest.py."""

pytest_plugins = ["tests.support.seaweedfs"]
