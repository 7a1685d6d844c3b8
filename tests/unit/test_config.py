"""Config: defaults, YAML, BERTH_<PATH> overrides, flags, and errors that name key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import Config, ConfigError, load_config
from registry.config_load import env_names

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_defaults_need_no_file() -> None:
    config = load_config(environ={})
    assert config == Config()
    assert config.http.addr == "127.0.0.1:5000"
    assert config.storage.delete.enabled is True
    assert config.database_url.startswith("sqlite+aiosqlite:///")
    assert config.database_url.endswith("/data/registry.db")
    assert config.blob_root == Path("./data")


def test_example_file_documents_the_defaults() -> None:
    assert load_config(REPO_ROOT / "config.example.yaml", environ={}) == Config()


def test_example_file_mentions_every_key() -> None:
    text = (REPO_ROOT / "config.example.yaml").read_text()
    for path in env_names().values():
        assert f"{path[-1]}:" in text, path


def test_distribution_style_file(tmp_path: Path) -> None:
    file = tmp_path / "config.yml"
    file.write_text(
        "version: 0.1\n"
        "log: {level: debug}\n"
        "storage:\n"
        "  filesystem: {rootdirectory: /var/lib/registry}\n"
        "  delete: {enabled: false}\n"
        "  maintenance: {uploadpurging: {enabled: true, age: 2h, interval: 30m, dryrun: true}}\n"
        "http:\n  addr: 0.0.0.0:5000\n  draintimeout: 5s\n"
        "  tls: {certificate: /c.pem, key: /k.pem}\n"
        "auth:\n  htpasswd: {realm: r, path: /etc/htpasswd}\n"
        "proxy: {remoteurl: ''}\n"
        "notifications:\n  endpoints:\n    - {name: hook, url: 'http://x/'}\n"
    )
    config = load_config(file, environ={})
    assert config.storage.filesystem.rootdirectory == "/var/lib/registry"
    assert config.blob_root == Path("/var/lib/registry")
    assert config.storage.delete.enabled is False
    assert config.storage.maintenance.uploadpurging.age == 7200
    assert config.storage.maintenance.uploadpurging.interval == 1800
    assert config.storage.maintenance.uploadpurging.dryrun is True
    assert config.http.draintimeout == 5
    assert config.http.tls.certificate == "/c.pem"
    assert config.auth == {"htpasswd": {"realm": "r", "path": "/etc/htpasswd"}}
    assert config.proxy.remoteurl == ""
    (hook,) = config.notifications.endpoints
    assert (hook.name, hook.url, hook.timeout, hook.threshold) == ("hook", "http://x/", 1.0, 10)
    assert config.log.level == "debug"


def test_environment_overrides_file_and_flags_override_environment(tmp_path: Path) -> None:
    file = tmp_path / "config.yml"
    file.write_text("http: {addr: 127.0.0.1:1111, workers: 3}\ndatadir: /from/file\n")
    environ = {
        "BERTH_HTTP_ADDR": "127.0.0.1:2222",
        "BERTH_STORAGE_DELETE_ENABLED": "false",
        "BERTH_DATABASE_URL": "postgresql+asyncpg://u@h/db",
        "BERTH_AUTH_HTPASSWD_PATH": "/etc/pw",
        "BERTH_TEST_TARGET": "distribution",  # not a config key: ignored
    }
    config = load_config(file, environ=environ, overrides={"datadir": "/from/flag"})
    assert config.http.addr == "127.0.0.1:2222"
    assert config.http.workers == 3
    assert config.storage.delete.enabled is False
    assert config.database_url == "postgresql+asyncpg://u@h/db"
    assert config.auth == {"htpasswd": {"path": "/etc/pw"}}
    assert config.datadir == "/from/flag"
    flagged = load_config(file, environ=environ, overrides={"http.addr": "127.0.0.1:3333"})
    assert flagged.http.addr == "127.0.0.1:3333"


def test_every_key_has_an_environment_name() -> None:
    names = env_names()
    assert names["BERTH_HTTP_ADDR"] == ("http", "addr")
    assert names["BERTH_STORAGE_DELETE_ENABLED"] == ("storage", "delete", "enabled")
    assert names["BERTH_HTTP_TLS_CERTIFICATE"] == ("http", "tls", "certificate")
    assert names["BERTH_STORAGE_MAINTENANCE_UPLOADPURGING_AGE"] == (
        "storage",
        "maintenance",
        "uploadpurging",
        "age",
    )
    assert names["BERTH_DATABASE_URL"] == ("database", "url")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"BERTH_STORAGE_DELETE_ENABLED": "maybe"},
            "storage.delete.enabled: 'maybe' (from BERTH_STORAGE_DELETE_ENABLED) is not a boolean",
        ),
        (
            {"BERTH_HTTP_WORKERS": "two"},
            "http.workers: 'two' (from BERTH_HTTP_WORKERS) is not an integer",
        ),
        (
            {"BERTH_HTTP_WORKERS": "-1"},
            "http.workers: '-1' (from BERTH_HTTP_WORKERS) must not be negative",
        ),
        (
            {"BERTH_HTTP_DRAINTIMEOUT": "soon"},
            "http.draintimeout: 'soon' (from BERTH_HTTP_DRAINTIMEOUT) is not a duration",
        ),
    ],
)
def test_bad_environment_values_name_key_value_and_variable(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ=environ)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http:\n  adress: x\n", "http.adress: unknown configuration key"),
        (
            "storage:\n  delete: {enabled: sometimes}\n",
            "storage.delete.enabled: 'sometimes' is not a boolean",
        ),
        ("http: 5\n", "http: expected a mapping, got 5"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("http: {addr: [1, 2]}\n", "http.addr: [1, 2] is not a string"),
        ("auth: yes-please\n", "auth: 'yes-please' is not a mapping"),
        ("notifications: {endpoints: [1]}\n", "notifications.endpoints[0]: expected a mapping"),
        (
            "notifications: {endpoints: [{name: a, url: ftp://x}]}\n",
            "notifications.endpoints: a: url 'ftp://x' is not an http(s) URL",
        ),
        (
            "notifications: {endpoints: [{name: a, url: http://x, ignore: {actions: [pul]}}]}\n",
            "notifications.endpoints: a: ignore.actions ['pul']",
        ),
        (
            "notifications: {endpoints: [{name: a, url: http://x, tiemout: 1s}]}\n",
            "notifications.endpoints[0].tiemout: unknown configuration key",
        ),
        ("log: {formatter: logstash}\n", "log.formatter: 'logstash' is not text or json"),
        ("http: {debug: {prometheus: {path: metrics}}}\n", "must start with /"),
        ("http: {addr: 'a\n", "not valid YAML"),
    ],
)
def test_bad_file_values(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "config.yml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(file, environ={})
    assert message in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yml", environ={})


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    file = tmp_path / "empty.yml"
    file.write_text("")
    assert load_config(file, environ={}) == Config()


def test_trusted_proxies_and_pool(tmp_path: Path) -> None:
    file = tmp_path / "config.yml"
    file.write_text(
        "http: {trustedproxies: [10.0.0.0/8, '::1'], secret: s3cr3t}\n"
        "database: {pool: {size: 4, maxoverflow: 0, timeout: 2s}}\n"
    )
    config = load_config(file, environ={})
    assert config.http.trustedproxies == ("10.0.0.0/8", "::1")
    assert config.http.secret == "s3cr3t"
    assert (config.database.pool.size, config.database.pool.maxoverflow) == (4, 0)
    assert config.database.pool.timeout == 2.0
    env = {"BERTH_HTTP_TRUSTEDPROXIES": "192.168.0.0/16, 127.0.0.1"}
    assert load_config(environ=env).http.trustedproxies == ("192.168.0.0/16", "127.0.0.1")
    with pytest.raises(ConfigError, match=r"http\.trustedproxies: 'nonsense'"):
        load_config(environ={"BERTH_HTTP_TRUSTEDPROXIES": "nonsense"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "proxy: {upstreams: [{prefix: a, remoteurl: 'ftp://x'}]}\n",
            "proxy.upstreams[0].remoteurl: 'ftp://x' is not a registry URL",
        ),
        ("log: {level: loud}\n", "log.level: 'loud' is not one of debug, info, warn"),
        ("log: {accesslog: {disabled: perhaps}}\n", "log.accesslog.disabled: 'perhaps'"),
        ("log: {accesslog: {enabled: true}}\n", "log.accesslog.enabled: unknown configuration"),
        ("auth: {htpasswd: {path: /h}, scheme: magic}\n", "auth.scheme: expected 'token'"),
        ("auth: {htpasswd: {path: /h}, tokens: {}}\n", "auth: unknown keys ['tokens']"),
        ("auth: {token: {realm: https://a/t, jwks: /j.json}, admins: 3}\n", "auth.admins"),
    ],
)
def test_sections_checked_beyond_their_types(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "config.yml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(file, environ={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_auth_from_the_environment_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"auth\.scheme"):
        load_config(environ={"BERTH_AUTH_SCHEME": "magic", "BERTH_AUTH_HTPASSWD_PATH": "/h"})


@pytest.mark.parametrize(
    ("text", "environ", "enabled"),
    [
        ("log: {accesslog: {disabled: true}}\n", {}, False),
        ("log: {accesslog: {disabled: false}}\n", {}, True),
        ("log: {accesslog: false}\n", {}, False),
        ("", {"BERTH_LOG_ACCESSLOG_DISABLED": "true"}, False),
        ("log: {accesslog: true}\n", {"BERTH_LOG_ACCESSLOG": "false"}, False),
    ],
)
def test_access_log_in_either_spelling(
    tmp_path: Path, text: str, environ: dict[str, str], enabled: bool
) -> None:
    file = tmp_path / "config.yml"
    file.write_text(text)
    assert load_config(file, environ=environ).log.accesslog is enabled


@pytest.mark.parametrize(
    "variable", ["BERTH_HTTP_ADRR", "BERTH_STORAGE_DELETE_ENABLE", "BERTH_LOG_"]
)
def test_unknown_variable_in_a_section_is_refused(variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable}: no such configuration key"):
        load_config(environ={variable: "x"})


def test_s3_storage_from_a_distribution_config(tmp_path: Path) -> None:
    file = tmp_path / "config.yml"
    file.write_text(
        "storage:\n"
        "  s3:\n"
        "    accesskey: AK\n    secretkey: SK\n    region: us-east-1\n"
        "    regionendpoint: http://127.0.0.1:8333\n    bucket: registry\n"
        "    rootdirectory: /berth\n    forcepathstyle: true\n    secure: false\n"
        "    skipverify: true\n    v4auth: true\n    chunksize: 5242880\n"
        "    storageclass: NONE\n"
        "  redirect: {disable: true}\n"
    )
    environ = {"BERTH_STORAGE_S3_BUCKET": "from-env", "BERTH_STORAGE_S3_CHUNKSIZE": "6291456"}
    config = load_config(file, environ=environ)
    s3 = config.storage.s3
    assert config.storage.driver == "s3"
    assert (s3.bucket, s3.region, s3.chunksize) == ("from-env", "us-east-1", 6 << 20)
    assert (s3.forcepathstyle, s3.secure, s3.skipverify) == (True, False, True)
    assert s3.storageclass == "NONE"
    assert config.storage.redirect.disable is True
    assert load_config(environ={}).storage.driver == "filesystem"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("storage: {s3: {bucket: b, region: r, encrypt: true}}", "storage.s3.encrypt"),
        ("storage: {s3: {bucket: b, region: r, keyid: k}}", "storage.s3.keyid"),
        ("storage: {s3: {bucket: b}}", "storage.s3.region is required"),
        ("storage: {s3: {region: r}}", "storage.s3.bucket is required"),
        ("storage: {s3: {bucket: b, region: r, chunksize: 1024}}", "storage.s3.chunksize"),
        (
            "storage: {s3: {bucket: b, region: r}, filesystem: {rootdirectory: /x}}",
            "exactly one driver",
        ),
        ("storage: {azure: {accountname: a}}", "storage.azure"),
    ],
)
def test_s3_storage_errors_name_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    file = tmp_path / "config.yml"
    file.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(file, environ={})


def test_distribution_notifications_and_debug_keys(tmp_path: Path) -> None:
    file = tmp_path / "config.yml"
    file.write_text(
        "log: {formatter: json, fields: {service: registry}}\n"
        "http:\n  debug: {addr: 127.0.0.1:5001, prometheus: {enabled: true, path: /m}}\n"
        "notifications:\n  endpoints:\n"
        "    - name: ci\n      url: https://ci.example/hook\n"
        "      headers: {Authorization: [Bearer xyz]}\n"
        "      timeout: 500ms\n      threshold: 5\n      backoff: 2s\n"
        "      ignoredmediatypes: [application/octet-stream]\n"
        "      ignore: {mediatypes: [text/plain], actions: [pull]}\n"
        "    - {name: off, url: 'http://x/', disabled: true}\n"
    )
    config = load_config(file, environ={})
    assert config.log.formatter == "json"
    assert config.log.fields == {"service": "registry"}
    assert config.http.debug.addr == "127.0.0.1:5001"
    assert config.http.debug.prometheus.path == "/m"
    ci, off = config.notifications.endpoints
    assert (ci.timeout, ci.threshold, ci.backoff) == (0.5, 5, 2.0)
    assert ci.headers == {"Authorization": ["Bearer xyz"]}
    assert ci.wants("push", "application/vnd.oci.image.manifest.v1+json")
    assert not ci.wants("push", "application/octet-stream")
    assert not ci.wants("push", "text/plain")
    assert not ci.wants("pull", "application/vnd.oci.image.manifest.v1+json")
    assert not off.wants("push", None)


def test_lists_and_mappings_from_the_environment() -> None:
    environ = {
        "BERTH_QUOTAS": "[{repositories: ['ci/**'], limit: 5GiB}]",
        "BERTH_LOG_FIELDS": "{service: registry}",
        "BERTH_NOTIFICATIONS_ENDPOINTS": '[{"name": "ci", "url": "http://127.0.0.1:9/"}]',
    }
    config = load_config(environ=environ)
    (quota,) = config.quotas
    assert (quota.repositories, quota.limit) == (("ci/**",), 5 << 30)
    assert config.log.fields == {"service": "registry"}
    assert [e.name for e in config.notifications.endpoints] == ["ci"]
    with pytest.raises(ConfigError, match=r"BERTH_QUOTAS"):
        load_config(environ={"BERTH_QUOTAS": "not a list"})


@pytest.mark.parametrize(("key", "value"), [("backoff", "0s"), ("threshold", "0")])
def test_webhook_backoff_and_threshold_must_be_positive(key: str, value: str) -> None:
    endpoint = f'[{{"name": "ci", "url": "http://127.0.0.1:9/", "{key}": "{value}"}}]'
    with pytest.raises(ConfigError, match=f"{key} must"):
        load_config(environ={"BERTH_NOTIFICATIONS_ENDPOINTS": endpoint})
