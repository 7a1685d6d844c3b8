"""The puller's public API, pinned (httpx's test_exported_members)."""

import subprocess
import sys

import puller


def test_all_lists_the_public_api() -> None:
    """Every exported name loads lazily from the module the export table names."""
    assert sorted(puller.__all__) == sorted(puller._EXPORTS)
    for name in puller.__all__:
        assert getattr(puller, name) is not None, name
    assert {"ImageStore", "ImageRecord", "default_root", "PullerError"} <= set(puller.__all__)


def test_store_lookups_do_not_import_the_http_client() -> None:
    """`berth run` of a pulled image only needs find/image_config/layer_dirs."""
    code = "import sys, puller; print('aiohttp' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
