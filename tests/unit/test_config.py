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
        "proxy: {remoteurl: https://registry-1.docker.io}\n"
        "notifications:\n  endpoints:\n    - {name: hook, url: http://x/}\n"
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
    assert config.proxy.remoteurl == "https://registry-1.docker.io"
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
