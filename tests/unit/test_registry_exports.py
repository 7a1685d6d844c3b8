"""The registry packages' public API is exactly their `__all__`."""

import importlib

import pytest

from registry import errcode


@pytest.mark.parametrize(
    "package", ["registry", "registry.db", "registry.http", "registry.service", "registry.webhooks"]
)
def test_all_lists_every_public_name_once(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"


def test_every_spec_error_code_is_registered_once() -> None:
    codes = [c.code for c in errcode.ALL_CODES]
    assert sorted(codes) == sorted(
        [
            "BLOB_UNKNOWN",
            "BLOB_UPLOAD_INVALID",
            "BLOB_UPLOAD_UNKNOWN",
            "DIGEST_INVALID",
            "MANIFEST_BLOB_UNKNOWN",
            "MANIFEST_INVALID",
            "MANIFEST_UNKNOWN",
            "NAME_INVALID",
            "NAME_UNKNOWN",
            "SIZE_INVALID",
            "UNAUTHORIZED",
            "DENIED",
            "UNSUPPORTED",
            "TOOMANYREQUESTS",
        ]
    )
    for code in errcode.ALL_CODES:
        assert code.code.isupper()
        assert 400 <= code.status < 500
