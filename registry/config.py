"""Configuration: one tree of frozen dataclasses, from YAML, overridable from the environment.

Key names follow CNCF Distribution's config.yml where Distribution has the setting, so a
Distribution config ports by reading it; Berth-only keys (`datadir`, `database.url`,
`http.workers`) are marked as such in config.example.yaml. Every key can be overridden as
`BERTH_<PATH>` (`BERTH_HTTP_ADDR`, `BERTH_STORAGE_DELETE_ENABLED`), the way Distribution uses
`REGISTRY_<PATH>`. The raw `auth` section takes overrides too (`BERTH_AUTH_HTPASSWD_PATH`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final


class ConfigError(ValueError):
    """A bad configuration value; the message names the key and the value."""


@dataclass(frozen=True, slots=True)
class TLSConfig:
    certificate: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class PrometheusConfig:
    enabled: bool = False
    path: str = "/metrics"

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ConfigError(f"http.debug.prometheus.path: {self.path!r} must start with /")


@dataclass(frozen=True, slots=True)
class DebugConfig:
    addr: str = ""  # Distribution's debug server (metrics, /debug/health); "" = off
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)


@dataclass(frozen=True, slots=True)
class HTTPConfig:
    addr: str = "127.0.0.1:5000"
    workers: int = 0  # Berth-only; 0 means one per CPU
    draintimeout: float = 60.0  # seconds in-flight requests get on shutdown
    tls: TLSConfig = field(default_factory=TLSConfig)
    secret: str = ""  # Distribution's http.secret: what replicas share, derived from it
    trustedproxies: tuple[str, ...] = ()  # Berth-only; CIDRs whose X-Forwarded-For is believed
    debug: DebugConfig = field(default_factory=DebugConfig)


@dataclass(frozen=True, slots=True)
class FilesystemConfig:
    rootdirectory: str = ""  # default: the data directory


@dataclass(frozen=True, slots=True)
class DeleteConfig:
    enabled: bool = True  # Distribution defaults to false; Berth to true


@dataclass(frozen=True, slots=True)
class UploadPurgingConfig:
    enabled: bool = True
    age: float = 7 * 24 * 3600.0  # seconds (Distribution writes 168h; both are accepted)
    interval: float = 24 * 3600.0
    dryrun: bool = False


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    uploadpurging: UploadPurgingConfig = field(default_factory=UploadPurgingConfig)


S3_MIN_CHUNK_SIZE = 5 << 20


@dataclass(frozen=True, slots=True)
class S3Config:
    """Distribution's `storage.s3`; any key set selects the S3 driver."""

    accesskey: str = ""  # "" = the AWS default credential chain
    secretkey: str = ""
    region: str = ""
    regionendpoint: str = ""  # an S3-compatible server (SeaweedFS, MinIO); "" = AWS
    bucket: str = ""
    rootdirectory: str = ""
    forcepathstyle: bool = False
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = 10 << 20
    storageclass: str = "STANDARD"  # NONE: send no storage class

    @property
    def configured(self) -> bool:
        return any(getattr(self, f.name) != f.default for f in fields(self))

    def __post_init__(self) -> None:
        if not self.configured:
            return
        for key in ("bucket", "region"):
            if not getattr(self, key):
                raise ConfigError(f"storage.s3.{key} is required when storage.s3 is configured")
        if self.chunksize < S3_MIN_CHUNK_SIZE:
            raise ConfigError(
                f"storage.s3.chunksize: {self.chunksize} is below S3's minimum part size "
                f"({S3_MIN_CHUNK_SIZE})"
            )


@dataclass(frozen=True, slots=True)
class RedirectConfig:
    disable: bool = False  # S3: blob GETs redirect to a presigned URL unless disabled


@dataclass(frozen=True, slots=True)
class StorageConfig:
    filesystem: FilesystemConfig = field(default_factory=FilesystemConfig)
    delete: DeleteConfig = field(default_factory=DeleteConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    s3: S3Config = field(default_factory=S3Config)
    redirect: RedirectConfig = field(default_factory=RedirectConfig)

    def __post_init__(self) -> None:
        if self.driver == "s3" and self.filesystem != FilesystemConfig():
            raise ConfigError("storage: configure exactly one driver, filesystem or s3, not both")

    @property
    def driver(self) -> str:
        """The one storage driver configured: "s3" when storage.s3 is set, else "filesystem"."""
        return "s3" if self.s3.configured else "filesystem"


@dataclass(frozen=True, slots=True)
class DatabasePoolConfig:
    size: int = 10  # connections kept open per worker process (PostgreSQL; SQLite has its own)
    maxoverflow: int = 10  # extra connections opened under load, closed when returned
    timeout: float = 30.0  # seconds a request waits for a free connection


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    url: str = ""  # Berth-only; default sqlite+aiosqlite:///<datadir>/registry.db
    pool: DatabasePoolConfig = field(default_factory=DatabasePoolConfig)


PROXY_TTL: Final = 300.0  # seconds a cached tag is served before it is revalidated upstream
_NAME_COMPONENT: Final = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_PROXY_PREFIX: Final = re.compile(rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*")
_REMOTE_URL: Final = re.compile(r"https?://[^/\s?#]+/?")


def _check_remoteurl(remoteurl: str) -> None:
    if "@" in remoteurl:  # it would be logged: credentials go in username and password
        raise ConfigError("remoteurl: no credentials in the URL; set username and password")
    if not _REMOTE_URL.fullmatch(remoteurl):
        raise ConfigError(
            f"remoteurl: {remoteurl!r} is not a registry URL such as https://host[:port]"
        )


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """One upstream of the pull-through cache: repository PREFIX/REST is its REST."""

    prefix: str = ""
    remoteurl: str = ""
    username: str = ""
    password: str = ""
    ttl: float = PROXY_TTL

    def __post_init__(self) -> None:
        if not self.prefix:
            raise ConfigError("prefix: required (repositories PREFIX/... come from remoteurl)")
        if not _PROXY_PREFIX.fullmatch(self.prefix):
            raise ConfigError(f"prefix: {self.prefix!r} is not a repository name prefix")
        _check_remoteurl(self.remoteurl)
        if self.password and not self.username:
            raise ConfigError("password: given without username")


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The pull-through cache (docs/pull-through-cache.md). `remoteurl`: the whole registry
    mirrors it, as Distribution's proxy section; `upstreams`: Berth-only, one upstream per
    name prefix."""

    remoteurl: str = ""
    username: str = ""
    password: str = ""
    ttl: float = PROXY_TTL
    dockerconfig: str = ""  # a docker config.json with credentials per upstream host
    upstreams: tuple[UpstreamConfig, ...] = ()

    def __post_init__(self) -> None:
        if self.remoteurl:
            _check_remoteurl(self.remoteurl)
        elif self.username or self.password:
            raise ConfigError("username: set without remoteurl (upstreams take their own)")
        if self.password and not self.username:
            raise ConfigError("password: given without username")
        prefixes = sorted(u.prefix for u in self.upstreams)
        for first, second in itertools.pairwise(prefixes):
            if second == first or second.startswith(first + "/"):
                raise ConfigError(
                    f"upstreams: prefixes {first!r} and {second!r} overlap; "
                    "a repository must have one upstream"
                )

    @property
    def enabled(self) -> bool:
        return bool(self.remoteurl or self.upstreams)


EVENT_ACTIONS: Final = ("push", "pull", "delete", "mount")


@dataclass(frozen=True, slots=True)
class IgnoreConfig:
    mediatypes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """One webhook receiver, with Distribution's keys and defaults."""

    name: str = ""
    url: str = ""
    headers: dict[str, Any] = field(default_factory=dict)  # name -> value or [values]
    timeout: float = 1.0
    threshold: int = 10  # consecutive failures before waiting `backoff` between attempts
    backoff: float = 1.0
    ignoredmediatypes: tuple[str, ...] = ()
    ignore: IgnoreConfig = field(default_factory=IgnoreConfig)
    disabled: bool = False

    def __post_init__(self) -> None:
        where = f"notifications.endpoints: {self.name or '(unnamed)'}"
        if not self.name:
            raise ConfigError(f"{where}: name is required")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: url {self.url!r} is not an http(s) URL")
        unknown = set(self.ignore.actions) - set(EVENT_ACTIONS)
        if unknown:
            raise ConfigError(f"{where}: ignore.actions {sorted(unknown)} (known: {EVENT_ACTIONS})")
        if self.timeout <= 0:
            raise ConfigError(f"{where}: timeout must be positive")
        if self.backoff <= 0:
            raise ConfigError(f"{where}: backoff must be positive")
        if self.threshold < 1:
            raise ConfigError(f"{where}: threshold must be at least 1")

    def wants(self, action: str, media_type: str | None) -> bool:
        if self.disabled or action in self.ignore.actions:
            return False
        ignored = (*self.ignoredmediatypes, *self.ignore.mediatypes)
        return media_type is None or media_type not in ignored


@dataclass(frozen=True, slots=True)
class NotificationsConfig:
    endpoints: tuple[EndpointConfig, ...] = ()

    def __post_init__(self) -> None:
        names = [e.name for e in self.endpoints]
        if len(names) != len(set(names)):
            raise ConfigError(f"notifications.endpoints: names must be unique, got {names}")


LOG_LEVELS = ("debug", "info", "warn", "warning", "error")


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    accesslog: bool = True  # Distribution's log.accesslog.disabled is accepted too
    formatter: str = "text"  # text | json (Distribution's log.formatter)
    fields: dict[str, Any] = field(default_factory=dict)  # added to every log line

    def __post_init__(self) -> None:
        if self.level.lower() not in LOG_LEVELS:
            raise ConfigError(f"level: {self.level!r} is not one of {', '.join(LOG_LEVELS)}")
        if self.formatter not in ("text", "json"):
            raise ConfigError(f"formatter: {self.formatter!r} is not text or json")


@dataclass(frozen=True, slots=True)
class GCConfig:
    """Berth-only: online garbage collection (docs/gc.md), run by one elected replica."""

    interval: float = 0.0  # seconds between passes; 0 turns the schedule off
    grace: float = 3600.0  # blobs uploaded, mounted or HEADed this recently are kept
    deleteuntagged: bool = False


@dataclass(frozen=True, slots=True)
class UIUsageConfig:
    interval: float = 300.0  # seconds between recomputing the storage page's figures


@dataclass(frozen=True, slots=True)
class UIConfig:
    enabled: bool = True  # Berth-only: the web interface at /ui/
    usage: UIUsageConfig = field(default_factory=UIUsageConfig)


@dataclass(frozen=True, slots=True)
class Config:
    version: str = "0.1"
    datadir: str = "./data"  # Berth-only
    log: LogConfig = field(default_factory=LogConfig)
    http: HTTPConfig = field(default_factory=HTTPConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    auth: dict[str, Any] = field(default_factory=dict)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    gc: GCConfig = field(default_factory=GCConfig)
    ui: UIConfig = field(default_factory=UIConfig)

    retention: tuple[RetentionRule, ...] = ()  # Berth-only, registry.retention
    quotas: tuple[QuotaRule, ...] = ()  # Berth-only, registry.quota
    immutabletags: tuple[ImmutableTagRule, ...] = ()  # Berth-only, registry.immutable_tags

    @property
    def data_dir(self) -> Path:
        return Path(self.datadir)

    @property
    def blob_root(self) -> Path:
        return Path(self.storage.filesystem.rootdirectory or self.datadir)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{Path(self.datadir).resolve() / 'registry.db'}"


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """In each repository matching `repositories`, retention deletes the tags that match none
    of `keeptags`, are not among the `keeplast` most recently pushed of the others (0: none
    kept by count), and were pushed more than `olderthan` seconds ago (0: at any age)."""

    repositories: tuple[str, ...] = ()
    keeplast: int = 0
    keeptags: tuple[str, ...] = ()
    olderthan: float = 0.0

    def __post_init__(self) -> None:
        if not self.repositories:
            raise ConfigError("repositories: name at least one repository glob")
        if not self.keeplast and not self.olderthan:
            raise ConfigError("keeplast: set it or olderthan; with neither, every tag would go")


QUOTA_SCOPES = ("repository", "namespace")


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """A storage limit in bytes for each repository matching `repositories`, or with scope
    `namespace`, for the whole namespace (first path component) of each matching repository."""

    repositories: tuple[str, ...] = ()
    limit: int = 0
    scope: str = "repository"

    def __post_init__(self) -> None:
        if not self.repositories:
            raise ConfigError("repositories: name at least one repository glob")
        if self.limit <= 0:
            raise ConfigError("limit: give a size above 0, such as 10GiB")
        if self.scope not in QUOTA_SCOPES:
            raise ConfigError(f"scope: {self.scope!r} is not one of {', '.join(QUOTA_SCOPES)}")


@dataclass(frozen=True, slots=True)
class ImmutableTagRule:
    """Tags matching `tags` in repositories matching `repositories` cannot be moved or deleted."""

    repositories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.repositories:
            raise ConfigError("repositories: name at least one repository glob")
        if not self.tags:
            raise ConfigError("tags: name at least one tag pattern")
