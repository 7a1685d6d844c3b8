"""Distribution's notification events, as JSON-ready dicts (pure code).

The envelope `{"events": [...]}` goes out as `application/vnd.docker.distribution.events.v1+json`;
each event has an `id` receivers can deduplicate on (delivery is at least once).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

EVENTS_MEDIA_TYPE: Final = "application/vnd.docker.distribution.events.v1+json"
BLOB_MEDIA_TYPE: Final = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Target:
    repository: str
    digest: str = ""
    media_type: str = ""
    size: int | None = None
    tag: str = ""
    url: str = ""
    from_repository: str = ""

    def as_json(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
            "length": self.size,
            "repository": self.repository,
            "fromRepository": self.from_repository,
            "url": self.url,
            "tag": self.tag,
        }
        return {k: v for k, v in fields.items() if v not in ("", None)}  # Go's omitempty


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: str = ""
    addr: str = ""
    host: str = ""
    method: str = ""
    useragent: str = ""
    scheme: str = "http"
    user: str = ""


def make_event(
    action: str, target: Target, request: RequestRecord, source: dict[str, str]
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "action": action,
        "target": target.as_json(),
        "request": {
            "id": request.id,
            "addr": request.addr,
            "host": request.host,
            "method": request.method,
            "useragent": request.useragent,
        },
        "actor": {"name": request.user} if request.user else {},
        "source": source,
    }


def envelope(payloads: Sequence[str]) -> bytes:
    """The request body for events already serialised as JSON objects."""
    return ('{"events":[' + ",".join(payloads) + "]}").encode()


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))
