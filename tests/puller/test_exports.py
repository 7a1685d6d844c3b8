"""The puller's public API, pinned (httpx's test_exported_members)."""

import puller


def test_all_lists_the_public_api() -> None:
    assert sorted(puller.__all__) == sorted(
        name
        for name in dir(puller)
        if not name.startswith("_")
        and name
        not in {
            "applier",
            "chain",
            "challenge",
            "client",
            "credentials",
            "decompress",
            "errors",
            "lowerview",
            "manifests",
            "mediatypes",
            "overlay",
            "platforms",
            "progress",
            "pulling",
            "records",
            "reference",
            "snapshots",
            "store",
            "tarplan",
            "transfer",
            "unpack",
        }
    )
    assert {"ImageStore", "ImageRecord", "default_root", "PullerError"} <= set(puller.__all__)
