"""The pages over HTTP: what they list, how they page and search, and HTML errors."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from registry.config import DeleteConfig, GCConfig, QuotaRule, StorageConfig, UIConfig
from registry.gc import GCOptions, collect_garbage
from registry.http.keys import BLOBSTORE, DATABASE
from registry.service.upload_locks import UploadLocks
from registry.ui.usage import refresh_usage
from tests.api.oci import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    descriptor,
    digest_of,
    push_blob,
    push_image,
)
from tests.support.seed import seed
from tests.ui.conftest import AppFactory, Client, first_snapshot


async def test_repository_list_search_and_open(client: Client) -> None:
    await push_image(client, "team/web", layer=b"web layer" * 100)
    await push_image(client, "team/api", layer=b"api layer", reference="v1")
    await push_image(client, "other/db")
    page = await client.get("/ui/")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert "3 repositories" in html
    for name in ("team/web", "team/api", "other/db"):
        assert f'href="/ui/r/{name}"' in html
    found = await (await client.get("/ui/?q=team")).text()
    assert "2 repositories" in found
    assert "other/db" not in found
    repo = await (await client.get("/ui/r/team/api")).text()
    assert "docker pull 127.0.0.1" in repo
    assert "team/api:v1" in repo
    assert "berth pull" in repo
    assert 'id="untagged"' not in repo


async def test_untagged_manifests_are_listed(client: Client) -> None:
    digest, _ = await push_image(client, "team/app", reference=None)
    await push_image(client, "team/app", layer=b"tagged", reference="1")
    html = await (await client.get("/ui/r/team/app")).text()
    untagged = html.split('id="untagged"')[1]
    assert f"/ui/r/team/app/-/manifests/{digest}" in untagged
    assert untagged.count("/-/manifests/") == 1


async def test_manifest_page_shows_config_layers_and_raw_json(client: Client) -> None:
    config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "config": {
                "Entrypoint": ["/bin/app"],
                "Cmd": ["--serve"],
                "Env": ["PATH=/usr/bin", "MODE=<prod>"],
                "WorkingDir": "/srv",
                "User": "1000:1000",
                "Labels": {"org.opencontainers.image.source": "https://example.test/app"},
                "ExposedPorts": {"8080/tcp": {}},
            },
            "history": [
                {"created": "2026-11-01T00:00:00Z", "created_by": "COPY app /bin/app"},
                {"created_by": "ENV MODE=prod", "empty_layer": True},
            ],
        }
    ).encode()
    digest, payload = await push_image(
        client, "team/app", config=config, media_type=DOCKER_MANIFEST, layer=b"x" * 4321
    )
    page = await client.get(f"/ui/r/team/app/-/manifests/{digest}")
    assert page.status == 200
    html = await page.text()
    assert DOCKER_MANIFEST in html
    assert "application/vnd.docker.image.rootfs.diff.tar.gzip" in html
    assert 'title="4,321 bytes"' in html
    for text in ("/bin/app", "--serve", "/srv", "1000:1000", "8080/tcp", "linux/arm64"):
        assert text in html
    assert "MODE=&lt;prod&gt;" in html  # escaped, never raw markup
    assert "org.opencontainers.image.source" in html
    assert "COPY app /bin/app" in html
    assert "ENV MODE=prod" in html
    assert "Raw manifest JSON" in html
    assert digest_of(config)[7:] in html
    assert json.loads(payload)["schemaVersion"] == 2
    assert "&#34;schemaVersion&#34;: 2," in html  # the raw JSON, pretty-printed and escaped


async def test_index_lists_children_and_platforms(client: Client) -> None:
    amd, amd_payload = await push_image(client, "multi/app", layer=b"amd", reference=None)
    arm, arm_payload = await push_image(
        client,
        "multi/app",
        layer=b"arm",
        config=b'{"architecture":"arm64","os":"linux"}',
        reference=None,
    )
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                **descriptor("application/vnd.oci.image.manifest.v1+json", amd_payload),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                **descriptor("application/vnd.oci.image.manifest.v1+json", arm_payload),
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
        ],
    }
    body = json.dumps(index).encode()
    resp = await client.put(
        "/v2/multi/app/manifests/1.0", data=body, headers={"Content-Type": OCI_INDEX}
    )
    assert resp.status == 201
    repo = await (await client.get("/ui/r/multi/app")).text()
    assert "linux/amd64, linux/arm64/v8" in repo
    assert 'id="untagged"' not in repo  # the children belong to the index
    # The index's size: both children's configs and layers, each blob once.
    configs = len(b'{"architecture":"amd64","os":"linux"}') + len(
        b'{"architecture":"arm64","os":"linux"}'
    )
    assert f'title="{configs + len(b"amd") + len(b"arm"):,} bytes"' in repo
    page = await (await client.get(f"/ui/r/multi/app/-/manifests/{digest_of(body)}")).text()
    assert f"/ui/r/multi/app/-/manifests/{amd}" in page
    assert f"/ui/r/multi/app/-/manifests/{arm}" in page
    assert "linux/arm64/v8" in page


async def test_errors_under_ui_are_html(client: Client) -> None:
    for path in (
        "/ui/r/no/such/repo",
        "/ui/r/UPPER",
        "/ui/nothing-here",
        "/ui/r/a/-/manifests/sha256:00",
        "/ui/r/no/such/-/tags/1/delete",
    ):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "text/html", path
        assert "<h1>404" in await resp.text()
    posted = await client.post("/ui/storage")
    assert posted.status == 405
    assert posted.content_type == "text/html"
    await push_image(client, "some/repo")
    unknown = await client.get("/ui/r/some/repo/-/tags/nope/delete")  # the service's error
    assert unknown.status == 404
    assert "No tag nope in some/repo" in await unknown.text()
    api = await client.get("/v2/no/such/manifests/latest")
    assert api.content_type == "application/json"  # the API keeps OCI JSON


async def test_ui_can_be_turned_off(make_client: AppFactory) -> None:
    off = await make_client(ui=UIConfig(enabled=False))
    assert (await off.get("/ui/")).status == 404


async def test_static_files_and_the_bare_prefix(client: Client) -> None:
    css = await client.get("/ui/static/ui.css")
    assert css.status == 200
    assert "[hidden]" in await css.text()
    assert "Set-Cookie" not in css.headers
    bare = await client.get("/ui", allow_redirects=False)
    assert bare.status == 308
    assert bare.headers["Location"] == "/ui/"


async def test_pages_report_server_timing(client: Client) -> None:
    resp = await client.get("/ui/storage")
    assert resp.status == 200
    assert re.fullmatch(r"app;dur=\d+\.\d, cpu;dur=\d+\.\d", resp.headers["Server-Timing"])


async def test_repository_pages_follow_each_other(
    make_client: AppFactory, database_url: str
) -> None:
    client = await make_client()
    await seed(database_url, 120, tags_in_big=3)
    seen: list[str] = []
    html = await (await client.get("/ui/")).text()
    assert "121 repositories" in html
    for _ in range(5):
        names = re.findall(r'<a class="repo" href="/ui/r/[^"]+">([^<]+)</a>', html)
        seen += names
        found = re.search(r'rel="next" href="([^"]+)"', html)
        if found is None:
            break
        html = await (await client.get(found.group(1).replace("&amp;", "&"))).text()
    assert len(seen) == 121
    assert seen == sorted(seen)
    assert len(set(seen)) == 121
    back = re.search(r'rel="prev" href="([^"]+)"', html)
    assert back is not None
    html = await (await client.get(back.group(1).replace("&amp;", "&"))).text()
    assert re.findall(r'<a class="repo" href="/ui/r/[^"]+">([^<]+)</a>', html) == seen[50:100]


async def test_tags_are_paged_and_filtered(make_client: AppFactory, database_url: str) -> None:
    client = await make_client()
    await seed(database_url, 1, tags_in_big=150)
    first = await (await client.get("/ui/r/big/many-tags")).text()
    assert "150 tags" in first
    assert first.count("<tr data-tag=") == 100
    assert 'href="/ui/r/big/many-tags?page=2"' in first
    second = await (await client.get("/ui/r/big/many-tags?page=2")).text()
    assert second.count("<tr data-tag=") == 50
    found = await (await client.get("/ui/r/big/many-tags?q=v14")).text()
    assert re.findall(r'<tr data-tag="([^"]+)">', found) == ["v14"] + [f"v14{i}" for i in range(10)]


async def test_storage_counts_a_shared_blob_once_per_namespace(client: Client) -> None:
    await first_snapshot(client)
    shared = b"shared base layer" * 1000
    await push_image(client, "team/a", layer=shared)
    await push_image(client, "team/b", layer=shared)
    await push_image(client, "solo", layer=b"own layer")
    before = await (await client.get("/ui/storage")).text()
    assert ">team<" not in before  # the snapshot was taken before these pushes
    await refresh_usage(client.app[DATABASE])
    html = await (await client.get("/ui/storage")).text()
    rows = dict(
        re.findall(r'<tr><td><a href="/ui/\?q=[^"]+">([^<]+)</a></td>(.*?)</tr>', html, re.S)
    )
    assert set(rows) == {"team", "solo"}
    config = len(b'{"architecture":"amd64","os":"linux"}')
    # team: the shared layer once, plus the config blob (identical in both: also once)
    assert f'title="{len(shared) + config:,} bytes"' in rows["team"]
    assert f'title="{len(b"own layer") + config:,} bytes"' in rows["solo"]
    assert '<div class="label">Repositories</div><div class="big">3</div>' in html


async def test_referrers_are_listed_on_their_subject(client: Client) -> None:
    subject, payload = await push_image(client, "team/app", reference="1")
    sbom, _ = await push_image(
        client,
        "team/app",
        layer=b'{"spdxVersion": "SPDX-2.3"}',
        reference=None,
        extra={
            "artifactType": "application/spdx+json",
            "subject": descriptor("application/vnd.oci.image.manifest.v1+json", payload),
            "annotations": {"org.opencontainers.image.created": "2026-11-30T08:00:00Z"},
        },
    )
    html = await (await client.get(f"/ui/r/team/app/-/manifests/{subject}")).text()
    referrers = html.split('id="referrers"')[1].split("</table>")[0]
    assert "application/spdx+json" in referrers
    assert f"/ui/r/team/app/-/manifests/{sbom}" in referrers
    assert "2026-11-30T08:00:00Z" in referrers
    own = await (await client.get(f"/ui/r/team/app/-/manifests/{sbom}")).text()
    assert f'href="/ui/r/team/app/-/manifests/{subject}"' in own  # its subject, linked
    assert "Artifact type</dt><dd><code>application/spdx+json" in own
    repo = await (await client.get("/ui/r/team/app")).text()
    assert 'id="untagged"' not in repo  # a referrer is held by its subject


async def test_no_delete_buttons_when_deletion_is_off(make_client: AppFactory) -> None:
    client = await make_client(storage=StorageConfig(delete=DeleteConfig(enabled=False)))
    digest, _ = await push_image(client, "team/app", reference="1")
    assert "delete-tag" not in await (await client.get("/ui/r/team/app")).text()
    page = await (await client.get(f"/ui/r/team/app/-/manifests/{digest}")).text()
    assert "delete-manifest" not in page
    assert (await client.get("/ui/r/team/app/-/tags/1/delete")).status == 403


async def test_storage_shows_gc_and_quota_settings(make_client: AppFactory) -> None:
    client = await make_client(
        gc=GCConfig(interval=86400.0, grace=3600.0),
        quotas=(QuotaRule(("team/**",), 5 * 10**9, "namespace"),),
    )
    html = await (await client.get("/ui/storage")).text()
    gc = html.split('id="gc"')[1].split("</dl>")[0]
    assert "a pass every 1d, on one replica" in gc
    assert "no pass running" in gc
    assert "1h" in gc
    quotas = html.split('id="quotas"')[1].split("</table>")[0]
    assert "<code>team/**</code>" in quotas
    assert "namespace" in quotas
    assert "5.0 GB" in quotas


async def test_storage_shows_the_last_gc_pass_and_quota_usage(make_client: AppFactory) -> None:
    client = await make_client(quotas=(QuotaRule(("team/**",), 10**6, "namespace"),))
    html = await (await client.get("/ui/storage")).text()
    assert re.search(r'id="last-gc">\s*none yet', html)
    assert "No repository falls under a quota yet." in html

    layer = b"team layer" * 100
    _, manifest = await push_image(client, "team/app", layer=layer)
    loose = await push_blob(client, "team/app", b"a blob no manifest uses")
    db = client.app[DATABASE]
    store = client.app[BLOBSTORE]
    await collect_garbage(db, store, UploadLocks(db), GCOptions(grace=timedelta(0)))

    html = await (await client.get("/ui/storage")).text()
    last = html.split('id="last-gc">')[1].split("</dd>")[0]
    assert "(berth gc," in last
    assert "removed 1 blob (" in last
    assert loose not in html
    rows = re.findall(r"<tr><td>(\w+)</td><td><a [^>]+>([^<]+)</a></td>(.*?)</tr>", html, re.S)
    assert [(kind, name) for kind, name, _ in rows] == [("namespace", "team")]
    config = len(b'{"architecture":"amd64","os":"linux"}')
    used = f"{len(layer) + config + len(manifest):,} bytes"  # blobs and manifests, once each
    assert used in rows[0][2]
    assert "1.0 MB" in rows[0][2]
