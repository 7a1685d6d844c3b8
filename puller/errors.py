"""Domain errors of the puller.

PullerError
├── InvalidReference       a string that is not a Docker image reference
├── InvalidPlatform        a --platform value that is not os/arch[/variant]
├── RegistryError          the registry answered something we cannot use
│   ├── AuthenticationFailed   401/403, or the token service refused us
│   ├── NotFound               404 for a manifest or blob
│   └── UnsupportedManifest    schema1, unknown media type, or no matching platform
├── ImageNotFound          no local image record for a reference
├── LayerRejected          a layer tries to escape its snapshot, or is malformed
│   ├── LayerTooLarge      a layer unpacks past the configured size cap
│   └── DecompressionBomb  a layer inflates more than the allowed ratio over its compressed size
└── DiffIDMismatch         the uncompressed layer does not hash to the config's diff_id

Every message names the reference, digest or path concerned, so the CLI prints it as is.
"""

from __future__ import annotations


class PullerError(Exception):
    """Base of every error the puller raises on purpose."""


class InvalidReference(PullerError, ValueError):
    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"invalid reference {value!r}: {reason}")
        self.value = value


class InvalidPlatform(PullerError, ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"invalid platform {value!r}: expected os/arch[/variant]")
        self.value = value


class RegistryError(PullerError):
    """The registry answered with an error or with content we cannot use."""


class AuthenticationFailed(RegistryError):
    pass


class NotFound(RegistryError):
    pass


class UnsupportedManifest(RegistryError):
    pass


class ImageNotFound(PullerError):
    def __init__(self, reference: str) -> None:
        super().__init__(f"no local image {reference}")
        self.reference = reference


class LayerRejected(PullerError):
    """A layer that would write outside its snapshot, or that cannot be applied."""


class LayerTooLarge(LayerRejected):
    def __init__(self, digest: object, limit: int) -> None:
        super().__init__(f"layer {digest} unpacks to more than {limit} bytes (size cap)")
        self.limit = limit


class DecompressionBomb(LayerRejected):
    def __init__(self, digest: object, ratio: float, unpacked: int, compressed: int) -> None:
        super().__init__(
            f"layer {digest} inflates more than {ratio:g}x ({unpacked} bytes from the first "
            f"{compressed} compressed): refused as a decompression bomb (see --max-expansion)"
        )
        self.ratio = ratio


class DiffIDMismatch(PullerError):
    def __init__(self, expected: object, actual: object) -> None:
        super().__init__(f"uncompressed layer is {actual}, but the image config says {expected}")
        self.expected = expected
        self.actual = actual
