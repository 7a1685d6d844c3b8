"""Docker image references: `[registry[:port]/]name[:tag][@digest]`, normalized as Docker does.

`parse_reference("busybox")` is `docker.io/library/busybox:latest`; a first component is a
registry only when it holds a `.` or a `:`, is `localhost`, or has an uppercase letter (as
distribution/reference's splitDockerDomain decides). A digest pins the content: when both a tag
and a digest are given the digest is what gets pulled, and the tag is kept only for display.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, NamedTuple

from blobstore import Digest, InvalidDigest
from registry_client.errors import InvalidReference

DEFAULT_REGISTRY: Final = "docker.io"
DEFAULT_TAG: Final = "latest"
# docker.io is a name, not a host: its API lives here.
DOCKER_HUB_API_HOST: Final = "registry-1.docker.io"

_COMPONENT: Final = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG: Final = re.compile(r"^[\w][\w.-]{0,127}$")
_HOST_LABEL: Final = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN: Final = re.compile(
    rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
)
_HEX64: Final = re.compile(r"^[a-f0-9]{64}$")
_MAX_NAME: Final = 255


class Reference(NamedTuple):
    """A normalized reference. `tag` is None only when a digest was given without a tag."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, the fully qualified name."""
        return f"{self.registry}/{self.repository}"

    @property
    def target(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return str(self.digest) if self.digest is not None else self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host:port serving the registry API for this reference."""
        return DOCKER_HUB_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(value: str) -> Reference:
    """Parse and normalize `value`; raises InvalidReference."""
    if not value or value != value.strip():
        raise InvalidReference(value, "empty or surrounded by spaces")
    remainder, digest = _split_digest(value)
    name, tag = _split_tag(remainder, value)
    registry, repository = _split_registry(name)
    _check_repository(repository, value)
    if registry != DEFAULT_REGISTRY and not _DOMAIN.match(registry):
        raise InvalidReference(value, f"invalid registry host {registry!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry, repository, tag, digest)


def _split_digest(value: str) -> tuple[str, Digest | None]:
    if "@" not in value:
        return value, None
    remainder, _, text = value.partition("@")
    try:
        return remainder, Digest.parse(text)
    except InvalidDigest as exc:
        raise InvalidReference(value, exc.reason) from None


def _split_tag(remainder: str, value: str) -> tuple[str, str | None]:
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon <= slash:
        return remainder, None
    tag = remainder[colon + 1 :]
    if not _TAG.match(tag):
        raise InvalidReference(value, f"invalid tag {tag!r}")
    return remainder[:colon], tag


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    is_domain = sep and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if not is_domain:
        registry, repository = DEFAULT_REGISTRY, name
    else:
        registry, repository = first, rest
    if registry == "index.docker.io":
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository


def _check_repository(repository: str, value: str) -> None:
    if not repository:
        raise InvalidReference(value, "no repository name")
    if len(repository) > _MAX_NAME:
        raise InvalidReference(value, f"repository name longer than {_MAX_NAME} characters")
    if _HEX64.match(repository.removeprefix("library/")):
        raise InvalidReference(value, "a 64-character hex string is an image id, not a name")
    for component in repository.split("/"):
        if not _COMPONENT.match(component):
            raise InvalidReference(value, f"invalid repository component {component!r}")


def default_plain_http(registry: str) -> bool:
    """Whether Docker treats `registry` as insecure without being told (localhost,
    127.0.0.0/8, ::1): HTTPS without certificate checks, falling back to plain HTTP."""
    host = registry
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
