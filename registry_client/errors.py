"""Errors of the registry client.

ClientError
├── InvalidReference       a string that is not a Docker image reference
└── RegistryError          the registry answered something we cannot use
    ├── AuthenticationFailed   401/403, or the token service refused us
    └── NotFound               404 for a manifest or blob

Every message names the registry, reference or digest concerned, so a CLI prints it as is.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error the registry client raises on purpose."""


class InvalidReference(ClientError, ValueError):
    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid reference {value!r}: {reason}")
        self.value = value


class RegistryError(ClientError):
    """The registry answered with an error or with content we cannot use."""


class AuthenticationFailed(RegistryError):
    pass


class NotFound(RegistryError):
    pass
