"""Each package's public API is exactly its `__all__`, as httpx pins its own."""

import importlib

import pytest


@pytest.mark.parametrize("package", ["blobstore"])
def test_all_lists_every_public_name_once(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"
    assert sorted(exported) == sorted(set(exported))
