"""Shared pytest setup. Package-specific fixtures live in each tests/<area>/conftest.py;
the engines' session fixtures (tests/support) are plugins, seen by every directory."""

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.seaweedfs",
    "tests.support.cluster",
    "tests.support.upstreams",
]
