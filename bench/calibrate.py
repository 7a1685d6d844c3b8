"""The load generator's own ceiling on this machine: the same request storm against a trivial
aiohttp server (one process, uvloop, a constant 700-byte body). Ratios above
ceiling / Distribution's rate cannot show in this benchmark, whatever the server does."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from bench.servers import _free_port
from bench.storm import storm

_TRIVIAL = """
import sys, uvloop
from aiohttp import web
async def answer(request): return web.Response(body=b"x" * 700, content_type="application/json")
app = web.Application(); app.router.add_get("/v2/", answer)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def load_ceiling(seconds: float, connections: int) -> float:
    """Requests per second the storm reaches against the trivial server."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _TRIVIAL, str(port)])
    try:
        url = f"http://127.0.0.1:{port}/v2/"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return storm(url, connections=connections, seconds=seconds).per_second
    finally:
        proc.terminate()
        proc.wait()
