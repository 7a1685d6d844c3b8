"""Operating `berth serve` (two workers) as people who run registries do: Prometheus metrics
on the debug server, JSON logs, readiness, and webhooks that lose nothing.

- metrics: known traffic, then a scrape parsed with prometheus-client's own parser; the
  counts are the sum over both workers (the access log shows both served).
- logs: every line is JSON; with auth on, no password, credential or token in any of them.
- webhooks: docker pushes, each manifest gives a push event; a SIGKILL right after a manifest
  PUT was acknowledged loses nothing; a receiver down for 30 s gets every event, in order.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DockerImages
from tests.e2e.oci_http import DOCKER_MANIFEST, OCI_MANIFEST, Registry
from tests.support.clients import run
from tests.support.server import RunningServer, berth_executable, free_port, start_berth
from tests.support.webhooks import Receiver

pytestmark = pytest.mark.e2e
PASSWORD = "Op3rate-s3cret-pw"
BLOB = "application/octet-stream"


def write_config(base: Path, **sections: Any) -> Path:
    path = base / "config.yml"
    path.write_text(yaml.safe_dump({"version": "0.1", **sections}))
    return path


def endpoint(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {
        "name": "test",
        "url": receiver.url,
        "timeout": "2s",
        "threshold": 3,
        "backoff": "1s",
        "ignoredmediatypes": [BLOB],  # manifests only
        **extra,
    }


def start(base: Path, config: Path, port: int | None = None) -> RunningServer:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(base / "metrics")}  # not a leftover in /tmp
    return start_berth(
        base / "data", port=port, workers=2, extra_args=["--config", str(config)], env=env
    )


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(url, timeout=30).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def log_lines(server: RunningServer) -> list[dict[str, Any]]:
    lines = [line for line in server.log().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must parse


# --- metrics and logs, auth on ----------------------------------------------------------------


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    base = tmp_path_factory.mktemp("observed")
    htpasswd = base / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()}\n")
    debug = f"127.0.0.1:{free_port()}"
    config = write_config(
        base,
        log={"formatter": "json", "fields": {"service": "registry"}},
        http={"debug": {"addr": debug, "prometheus": {"enabled": True}}},
        auth={
            "htpasswd": {"realm": "ops", "path": str(htpasswd)},
            "access": [{"users": ["alice"], "repositories": ["**"], "actions": ["pull", "push"]}],
        },
    )
    server = start(base, config)
    try:
        yield server, f"http://{debug}"
    finally:
        server.stop()


def test_metrics_are_summed_over_both_workers(observed: tuple[RunningServer, str]) -> None:
    server, debug = observed
    before = scrape(f"{debug}/metrics")
    count = 60

    def probe(_: int) -> int:
        # A connection of its own each time, so the kernel hands them to either worker.
        return requests.get(
            f"{server.url}/v2/", headers={"Connection": "close"}, timeout=30
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(probe, range(count)))
    assert statuses == [401] * count
    token = _token(server, "repository:ops/app:pull,push")
    registry = _authed_registry(server, token)
    registry.push_image("ops/app", "v1", seed="metrics")
    for _ in range(3):
        assert registry.request("GET", "/v2/ops/app/manifests/v1").status_code == 200

    after = scrape(f"{debug}/metrics")
    v2 = {"method": "GET", "route": "/v2/", "status": "401"}
    assert (
        value(after, "berth_http_requests_total", **v2)
        - value(before, "berth_http_requests_total", **v2)
        == count
    )
    manifests = {"method": "GET", "route": "/v2/{name}/manifests/{reference}", "status": "200"}
    assert value(after, "berth_http_requests_total", **manifests) == 3
    put = {"method": "PUT", "route": "/v2/{name}/manifests/{reference}", "status": "201"}
    assert value(after, "berth_http_requests_total", **put) == 1
    duration = {"method": "GET", "route": "/v2/"}
    assert (
        value(after, "berth_http_request_duration_seconds_count", **duration)
        - value(before, "berth_http_request_duration_seconds_count", **duration)
        == count
    )
    uploads = {"method": "PUT", "route": "/v2/{name}/blobs/uploads/{uuid}"}
    assert value(after, "berth_http_received_bytes_total", **uploads) > 0
    assert value(after, "berth_http_sent_bytes_total", method="GET", route=manifests["route"]) > 0
    assert value(after, "berth_storage_blobs") == 3  # config and two layers
    assert value(after, "berth_storage_bytes") > 0
    assert value(after, "berth_uploads_in_progress") == 0
    assert value(after, "berth_webhook_queue_depth") == 0
    for name in ("berth_gc_runs_total", "berth_gc_freed_bytes_total"):
        assert (name, frozenset()) in after
    assert ("berth_db_pool_connections_in_use", frozenset()) in after
    assert not any("ops/app" in v for _, labels in after for _, v in labels)

    # Both workers answered some of the probes, and the scrape counted them all.
    pids = {
        line["pid"]
        for line in log_lines(server)
        if line.get("logger") == "berth.access" and line.get("route") == "/v2/"
    }
    assert len(pids) == 2, pids


def test_debug_health_and_readyz(observed: tuple[RunningServer, str]) -> None:
    server, debug = observed
    response = requests.get(f"{debug}/debug/health", timeout=30)
    assert (response.status_code, response.json()) == (200, {})
    assert requests.get(f"{server.url}/readyz", timeout=30).status_code == 200
    assert requests.get(f"{server.url}/healthz", timeout=30).status_code == 200


def test_json_logs_hold_no_secret(observed: tuple[RunningServer, str]) -> None:
    server, _ = observed
    token = _token(server, "repository:ops/secret:pull,push")
    _authed_registry(server, token).push_image("ops/secret", "v1", seed="secret")
    wrong = requests.get(f"{server.url}/auth/token", auth=("alice", "wrong-pw-x"), timeout=30)
    assert wrong.status_code == 401
    lines = log_lines(server)
    access = [line for line in lines if line.get("logger") == "berth.access"]
    pushed = [a for a in access if a["repository"] == "ops/secret" and a["method"] == "PUT"]
    assert pushed
    assert {a["user"] for a in pushed} == {"alice"}
    assert all(a["service"] == "registry" and a["request_id"] for a in access)
    text = server.log()
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, token, token.split(".")[-1], "wrong-pw-x"):
        assert secret not in text


def _token(server: RunningServer, scope: str) -> str:
    response = requests.get(
        f"{server.url}/auth/token", params={"scope": scope}, auth=("alice", PASSWORD), timeout=30
    )
    response.raise_for_status()
    return str(response.json()["token"])


def _authed_registry(server: RunningServer, token: str) -> Registry:
    registry = Registry(server.url)
    registry.session.headers["Authorization"] = f"Bearer {token}"
    return registry


# --- webhooks ---------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


def test_docker_pushes_each_give_a_push_event(
    tmp_path: Path,
    receiver: Receiver,
    busybox_image: str,
    docker_images: DockerImages,
    docker_config: dict[str, str],
) -> None:
    receiver.start()
    server = start(
        tmp_path, write_config(tmp_path, notifications={"endpoints": [endpoint(receiver)]})
    )
    try:
        pushed: dict[str, str] = {}  # repo:tag -> digest docker reports
        for ref in ("hooks/one:a", "hooks/one:b", "hooks/two:latest"):
            name = docker_images.tag(busybox_image, f"{server.host}/{ref}")
            out = run(["docker", "push", name], env=docker_config).stdout
            pushed[ref] = out.split("digest: ", 1)[1].split()[0]
        events = receiver.wait_for(lambda evs: len(evs) >= len(pushed))
        got = {
            f"{e['target']['repository']}:{e['target']['tag']}": e["target"]["digest"]
            for e in events
        }
        assert got == pushed
        assert {(e["action"], e["target"]["mediaType"]) for e in events} == {
            ("push", DOCKER_MANIFEST)
        }
        assert len({e["id"] for e in events}) == len(events)
    finally:
        server.stop()


def test_sigkill_after_the_put_still_delivers(tmp_path: Path, receiver: Receiver) -> None:
    receiver.refuse = True  # up, but taking nothing: the event cannot leave before the kill
    receiver.start()
    config = write_config(tmp_path, notifications={"endpoints": [endpoint(receiver)]})
    server = start(tmp_path, config)
    _, digest = Registry(server.url).push_image("hooks/crash", "v1", seed=uuid.uuid4().hex)
    server.kill()  # SIGKILL to the whole process group, right after the 201
    assert receiver.events == []
    receiver.refuse = False
    server = start(tmp_path, config, port=int(server.host.rsplit(":", 1)[1]))
    try:
        events = receiver.wait_for(lambda evs: len(evs) >= 1, timeout=60)
        assert [(e["action"], e["target"]["digest"], e["target"]["tag"]) for e in events] == [
            ("push", digest, "v1")
        ]
        assert events[0]["target"]["mediaType"] == OCI_MANIFEST
    finally:
        server.stop()


def test_a_receiver_down_for_30s_gets_every_event_in_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    debug = f"127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path,
        http={"debug": {"addr": debug, "prometheus": {"enabled": True}}},
        notifications={"endpoints": [endpoint(receiver)]},
    )
    server = start(tmp_path, config)
    metrics_url = f"http://{debug}/metrics"
    try:
        registry = Registry(server.url)
        digests = [
            registry.push_image("hooks/down", f"t{i}", seed=uuid.uuid4().hex)[1] for i in range(8)
        ]
        assert registry.request("DELETE", "/v2/hooks/down/manifests/t0").status_code == 202
        pending = _berth_events(config, tmp_path)
        assert [p["action"] for p in pending] == ["push"] * 8 + ["delete"]
        time.sleep(30)  # the receiver stays down: the dispatcher keeps retrying
        failed = _berth_events(config, tmp_path, "--failed")
        assert failed
        assert failed[0]["endpoint"] == "test"
        assert failed[0]["attempts"] > 3
        assert "ClientConnectorError" in failed[0]["last_error"]
        down = scrape(metrics_url)
        assert value(down, "berth_webhook_queue_depth") == 9
        assert value(down, "berth_webhook_failures_total", endpoint="test") > 3
        assert value(down, "berth_webhook_deliveries_total", endpoint="test") == 0
        receiver.start()
        events = receiver.wait_for(lambda evs: len(evs) >= 9, timeout=60)
        assert [e["target"].get("digest") for e in events[:8]] == digests
        assert [e["target"].get("tag") for e in events[:8]] == [f"t{i}" for i in range(8)]
        assert (events[8]["action"], events[8]["target"]["tag"]) == ("delete", "t0")
        assert len(events) == 9
        assert _berth_events(config, tmp_path) == []
        up = scrape(metrics_url)
        assert value(up, "berth_webhook_queue_depth") == 0
        assert value(up, "berth_webhook_deliveries_total", endpoint="test") == 9
    finally:
        server.stop()


def _berth_events(config: Path, base: Path, *args: str) -> list[dict[str, Any]]:
    argv = [berth_executable(), "events", "--config", str(config), "--json", *args]
    out = run([*argv, "--data-dir", str(base / "data")]).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_one_dispatcher_among_replicas(tmp_path: Path, receiver: Receiver) -> None:
    """Two `berth serve` (two workers each) on one database: four processes could deliver,
    one is elected, and every event arrives once."""
    receiver.start()
    config = write_config(
        tmp_path,
        log={"formatter": "json"},
        notifications={"endpoints": [endpoint(receiver)]},
    )
    first = start(tmp_path, config)
    second = start_berth(
        tmp_path / "data",
        workers=2,
        extra_args=["--config", str(config)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics-2")},
        log_path=tmp_path / "second.log",
    )
    try:
        digests = [
            Registry(server.url).push_image("hooks/replicas", f"r{i}", seed=uuid.uuid4().hex)[1]
            for i, server in enumerate([first, second] * 3)
        ]
        events = receiver.wait_for(lambda evs: len(evs) >= 6)
        assert sorted(e["target"]["digest"] for e in events) == sorted(digests)
        assert len({e["id"] for e in events}) == 6
        leaders = [
            line
            for server in (first, second)
            for line in log_lines(server)
            if line["msg"].startswith("leader for webhooks")
        ]
        assert len(leaders) == 1, leaders
    finally:
        second.stop()
        first.stop()
