"""The pull-through cache on three replicas (one PostgreSQL, one blob directory) behind a
round-robin nginx: eight clients pulling one uncached image at once, their requests spread
over every replica, still cost the upstream one fetch of each blob. Single flight goes
through the database, not a process's memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_no_traceback
from tests.support.cluster import Cluster, filesystem_storage, running_cluster
from tests.support.postgres import PostgresServer
from tests.support.upstreams import (
    Upstream,
    assert_each_pull_complete_and_fetched_once,
    concurrent_pulls,
    random_image,
)

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]
CLIENTS = 8


@pytest.fixture(scope="module")
def proxy_cluster(
    postgres_server: PostgresServer,
    dist_upstream: Upstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("proxy-cluster")
    with running_cluster(
        directory,
        postgres_server.url(postgres_server.create_database()),
        filesystem_storage(directory / "blobs"),
        extra_config={"proxy": {"upstreams": [dist_upstream.proxy_entry("dist")]}},
    ) as cluster:
        yield cluster
        assert_no_traceback(cluster.endpoint)


def test_concurrent_pulls_across_replicas_fetch_each_blob_once(
    proxy_cluster: Cluster, dist_upstream: Upstream, tmp_path: Path
) -> None:
    repository = f"pt/cluster-{uuid.uuid4().hex[:8]}"
    image = random_image(layers=3, layer_size=6 << 20)
    dist_upstream.seed(repository, "v1", image)
    source = f"docker://{proxy_cluster.host}/dist/{repository}:v1"
    logged = len(proxy_cluster.balancer.access_log())

    copies = concurrent_pulls(source, tmp_path, CLIENTS)
    assert_each_pull_complete_and_fetched_once(copies, image, dist_upstream)
    # The blob GETs really were spread: more than one replica answered them.
    lines = proxy_cluster.balancer.access_log()[logged:]
    blob_lines = [line for line in lines if "/blobs/" in line]
    replicas = set(proxy_cluster.balancer.upstreams_used(blob_lines))
    assert len(replicas) > 1, replicas
