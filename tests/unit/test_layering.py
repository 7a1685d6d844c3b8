"""The packages' dependencies point one way: berth -> registry, puller, runtime ->
registry_client -> blobstore. Checked on the source, so a stray import fails here, not in
review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"berth", "registry", "registry_client", "puller", "runtime", "blobstore", "migrations"}

ALLOWED: dict[str, set[str]] = {
    "blobstore": set(),
    "registry_client": {"blobstore"},
    "puller": {"blobstore", "registry_client"},
    "runtime": {"blobstore", "puller"},
    "registry": {"blobstore", "registry_client", "migrations"},
}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Our top-level packages each module of `package` imports, by module path."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = (names & OURS) - {package}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_lies_below_it(package: str) -> None:
    modules = imported_packages(package)
    assert modules, f"no modules found in {package}"
    stray = {m: sorted(n - ALLOWED[package]) for m, n in modules.items() if n - ALLOWED[package]}
    assert stray == {}


def test_nothing_imports_the_command_line() -> None:
    for package in ALLOWED:
        assert not any("berth" in n for n in imported_packages(package).values()), package
