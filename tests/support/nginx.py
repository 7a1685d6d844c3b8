"""nginx (Debian's nginx-light) as the load balancer in front of registry replicas.

Round robin over the upstreams with no stickiness, request and response bodies streamed
(no buffering, no size limit), HTTP/1.1 with keep-alive to the replicas, the client's
address appended to X-Forwarded-For, and the serving replica (`$upstream_addr`) logged for
every request. Everything nginx writes (pid, logs, temp dirs) lives in the state dir; the
process runs in the foreground (`daemon off`) and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import free_port

_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_executable() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_conf(port: int, upstreams: Sequence[str], state: Path) -> str:
    servers = "".join(f"    server {host} max_fails=1 fail_timeout=5s;\n" for host in upstreams)
    temp = "".join(f"  {name}_temp_path {state / name};\n" for name in _TEMP_DIRS)
    return f"""worker_processes 1;
pid {state / "nginx.pid"};
error_log {state / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  log_format balancer '$remote_addr "$request" $status $body_bytes_sent upstream=$upstream_addr';
  access_log {state / "access.log"} balancer;
{temp}  upstream berth {{
{servers}    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    proxy_http_version 1.1;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_read_timeout 600s;
    proxy_send_timeout 600s;
    location / {{
      proxy_pass http://berth;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""


@dataclass
class Nginx:
    port: int
    state: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def access_log(self) -> list[str]:
        path = self.state / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def upstreams_used(self, lines: Sequence[str] | None = None) -> list[str]:
        """The replica (`HOST:PORT`) that served each logged request, in order; a request
        retried on another replica lists both, comma-separated."""
        return [
            line.rsplit("upstream=", 1)[1]
            for line in (self.access_log() if lines is None else lines)
            if "upstream=" in line
        ]

    def error_log(self) -> str:
        path = self.state / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def _wait_listening(balancer: Nginx, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if balancer.process.poll() is not None:
            raise RuntimeError(f"nginx exited: {balancer.error_log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", balancer.port)):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen within {timeout}s: {balancer.error_log()}")


@contextlib.contextmanager
def running_nginx(
    upstreams: Sequence[str], state: Path, port: int | None = None
) -> Iterator[Nginx]:
    """Balance over `upstreams` (`HOST:PORT` each) on 127.0.0.1:`port` (default: free)."""
    state.mkdir(parents=True, exist_ok=True)
    for name in _TEMP_DIRS:
        (state / name).mkdir(exist_ok=True)
    port = port or free_port()
    conf = state / "nginx.conf"
    conf.write_text(nginx_conf(port, upstreams, state))
    output = open(state / "stderr.log", "wb")  # noqa: SIM115  (the child owns it)
    process = subprocess.Popen(
        [nginx_executable(), "-c", str(conf), "-p", str(state), "-g", "daemon off;"],
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output.close()
    balancer = Nginx(port, state, process)
    try:
        _wait_listening(balancer)
        yield balancer
    finally:
        balancer.stop()
