"""registry.auth's public API is exactly its `__all__`, and the two hooks keep their shape."""

import inspect

import registry.auth


def test_all_is_pinned() -> None:
    assert sorted(registry.auth.__all__) == [
        "AUTH",
        "AuthConfig",
        "TOKEN_PATH",
        "allowed",
        "install",
        "parse_auth_config",
    ]
    for name in registry.auth.__all__:
        assert hasattr(registry.auth, name)


def test_hook_signatures() -> None:
    assert list(inspect.signature(registry.auth.install).parameters) == [
        "app",
        "config",
        "data_dir",
        "db",
        "trusted_proxies",
    ]
    assert list(inspect.signature(registry.auth.allowed).parameters) == [
        "request",
        "repository",
        "action",
    ]
