"""The registry's metadata tables (SQLAlchemy Core). Alembic migrations create them.

    repositories          one row per repository name
    blobs                 every blob the registry knows (digest, size); bytes live in the blobstore
    repository_blobs      which repository links which blob (a blob is visible only where linked)
    manifests             (repository, digest) -> exact payload, media type, subject, artifact type
    manifest_references   manifest -> blob (config, layer) and manifest -> manifest (index child)
    tags                  (repository, name) -> manifest
    upload_sessions       uploads: id is the blobstore ingest id, state its progress; an ended
                          one is kept until its id expires (registry.service.signed_upload_ids)
    leases                named exclusive holds with an expiry (registry.leases)
    shared_secrets        secrets every replica must agree on, created once (token signing key)
    login_failures        failed-login token buckets per client address (registry.auth.ratelimit)
    manifest_pulls        manifest -> when it was last pulled (for the web UI)
    storage_usage         bytes stored per namespace (and "" for all), recomputed periodically
    blob_pins             uploads between their pin and their link: GC keeps these blobs
    quota_contents        per quota scope and digest: references and size (kept by triggers)
    quota_usage           per quota scope: bytes stored, each blob counted once (registry.quota)
    webhook_outbox        webhook events per endpoint, until delivered (registry.webhooks)
    proxy_tag_checks      cached tags of the pull-through cache: when last checked upstream

A blob row's `state` is `live` or `deleting` (garbage collection marked it and is deleting
its bytes; nothing may reference it any more), and `touched_at` is its last upload, mount
or HEAD, recorded at most once a minute (docs/gc.md).

Every reference a garbage collector or quota needs is a row here, so both can be added
without a redesign. Concurrent writers rely on the unique constraints plus
INSERT .. ON CONFLICT, never on check-then-insert.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time read back from SQL: SQLite returns it without its zone; it was written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(150), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("state", String(16), nullable=False, default="live", server_default="live"),
    Column("touched_at", DateTime(timezone=True), nullable=True),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column(
        "repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    ),
    Column("digest", String(150), ForeignKey("blobs.digest"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    PrimaryKeyConstraint("repository_id", "digest"),
    Index("ix_repository_blobs_digest", "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    ),
    Column("digest", String(150), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255), nullable=True),
    Column("subject_digest", String(150), nullable=True),
    Column("annotations", Text, nullable=True),  # JSON object, for the referrers API
    Column("size", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
)

manifest_references = Table(
    "manifest_references",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # config | layer | manifest
    Column("digest", String(150), nullable=False),
    PrimaryKeyConstraint("manifest_id", "kind", "digest"),
    Index("ix_manifest_references_digest", "digest"),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(128), nullable=False),
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=utcnow),
    PrimaryKeyConstraint("repository_id", "name"),
    Index("ix_tags_manifest_id", "manifest_id"),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    ),
    Column("started_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("state", LargeBinary, nullable=True),  # the blobstore's Upload.state() (migration 0003)
    # The request writing to the upload, until when (registry.service.upload_locks; 0011)
    Column("holder", String(255), nullable=True),
    Column("hold_expires_at", DateTime(timezone=True), nullable=True),
    # When it completed, was cancelled or purged: its id may not start it again (0012)
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_upload_sessions_updated_at", "updated_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("generation", BigInteger, nullable=False),
)

shared_secrets = Table(
    "shared_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("client", String(64), primary_key=True),
    Column("tokens", Float, nullable=False),  # what is left of the bucket at `at`
    Column("at", Float, nullable=False),  # Unix time (seconds) of the last failure
    Index("ix_login_failures_at", "at"),
)

blob_pins = Table(
    "blob_pins",
    metadata,
    Column("digest", String(150), nullable=False),
    Column("holder", String(64), nullable=False),  # the upload id
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("digest", "holder"),
)

# Quota usage counters (registry.quota), kept by triggers on repository_blobs and manifests
# (migration 0006): references per scope and content digest, and bytes per scope. A scope is
# `repository:<name>` or `namespace:<first path component>`.
quota_contents = Table(
    "quota_contents",
    metadata,
    Column("scope", String(300), nullable=False),
    Column("digest", String(150), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("refs", Integer, nullable=False),
    PrimaryKeyConstraint("scope", "digest"),
)

quota_usage = Table(
    "quota_usage",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("bytes", BigInteger, nullable=False),
)

# Webhook events waiting for (or done with) delivery, one row per (event, endpoint), written
# in the same transaction as the change they report (registry.webhooks).
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # delivery order
    Column("endpoint", String(255), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # the event, as JSON
    Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_webhook_outbox_pending", "endpoint", "delivered_at", "id"),
)

manifest_pulls = Table(
    "manifest_pulls",
    metadata,
    # When a manifest was last pulled (GET), written at most once a minute per manifest.
    Column(
        "manifest_id",
        Integer,
        ForeignKey("manifests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("pulled_at", DateTime(timezone=True), nullable=False),
)

storage_usage = Table(
    "storage_usage",
    metadata,
    # A snapshot the UI's storage page reads; namespace "" is the whole registry.
    Column("namespace", String(255), primary_key=True),
    Column("repositories", Integer, nullable=False),
    Column("blobs", Integer, nullable=False),
    Column("blob_bytes", BigInteger, nullable=False),
    Column("manifests", Integer, nullable=False),
    Column("manifest_bytes", BigInteger, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

gc_runs = Table(
    "gc_runs",
    metadata,
    # One row per garbage collection pass that ran (dry runs excluded); the newest few are kept.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("trigger", String(16), nullable=False),  # "schedule" or "command"
    Column("manifests", Integer, nullable=False),
    Column("links", Integer, nullable=False),
    Column("blobs", Integer, nullable=False),
    Column("uploads", Integer, nullable=False),
    Column("ingests", Integer, nullable=False),
    Column("bytes_freed", BigInteger, nullable=False),
    Column("error", Text, nullable=True),  # why the pass stopped, when it failed
)


proxy_tag_checks = Table(
    "proxy_tag_checks",
    metadata,
    # A tag the pull-through cache fetched or revalidated upstream, and when (registry.proxy).
    Column(
        "repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(128), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("repository_id", "name"),
)
