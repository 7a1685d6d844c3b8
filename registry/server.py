"""Run the registry: one listening socket, shared by N worker processes, each on uvloop.

The parent migrates the database, binds the socket, forks the workers and forwards SIGTERM and
SIGINT to them; each worker drains its in-flight requests (http.draintimeout) before exiting.
A worker that dies unexpectedly is replaced. With one worker, the parent serves by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import time
from types import FrameType

import uvloop
from aiohttp import web

from registry import logs, metrics
from registry.app import create_app
from registry.config import Config, ConfigError
from registry.db import upgrade
from registry.http.debug import start_debug_server
from registry.http.keys import INFLIGHT

log = logging.getLogger("berth.serve")


def parse_addr(addr: str, key: str = "http.addr") -> tuple[str, int]:
    """`host:port`, `:port` or `[v6]:port`."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: {addr!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def bind(addr: str, key: str = "http.addr") -> socket.socket:
    host, port = parse_addr(addr, key)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{key}: cannot listen on {addr}: {exc.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def ssl_context(config: Config) -> ssl.SSLContext | None:
    tls = config.http.tls
    if not tls.certificate and not tls.key:
        return None
    if not tls.certificate or not tls.key:
        raise ConfigError("http.tls: certificate and key must be set together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls.certificate, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"http.tls: cannot load {tls.certificate} / {tls.key}: {exc}") from None
    return context


def serve(config: Config) -> int:
    """Migrate, bind, and serve until SIGTERM/SIGINT. Returns the exit status."""
    logs.configure(config.log)
    parse_addr(config.http.addr)
    context = ssl_context(config)
    os.makedirs(config.data_dir, exist_ok=True)
    _migrate_in_child(config.database_url)
    sock = bind(config.http.addr)
    debug_addr = config.http.debug.addr
    debug_sock = bind(debug_addr, "http.debug.addr") if debug_addr else None
    workers = config.http.workers or os.cpu_count() or 1
    scheme = "https" if context else "http"
    log.info("listening on %s://%s with %d worker(s)", scheme, config.http.addr, workers)
    if workers == 1:
        _run_worker(config, sock, context, debug_sock)
        return 0
    return _supervise(config, sock, context, workers, debug_sock)


def _migrate_in_child(url: str) -> None:
    """Apply migrations in a short-lived child, so Alembic's imports and memory never reach
    the parent, whose pages every worker shares."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            upgrade(url)
        except BaseException:
            log.exception("database migration failed")
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise ConfigError(f"database: cannot migrate {url} (see the log above)")


def _run_worker(
    config: Config,
    sock: socket.socket,
    context: ssl.SSLContext | None,
    debug_sock: socket.socket | None = None,
) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(config, sock, context, debug_sock))


async def _serve(
    config: Config,
    sock: socket.socket,
    context: ssl.SSLContext | None,
    debug_sock: socket.socket | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, let in-flight requests finish (bodies
    still arriving included) for up to http.draintimeout, and shut down."""
    app = create_app(config)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,  # registry.http.observe writes the access log
        shutdown_timeout=config.http.draintimeout,
    )
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=context)
    await site.start()
    debug = await start_debug_server(app, debug_sock) if debug_sock is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        await site.stop()
        inflight = app[INFLIGHT]
        if inflight.count:
            log.info("draining %d in-flight request(s)", inflight.count)
        if not await inflight.wait_idle(config.http.draintimeout):
            log.warning("drain timeout: %d request(s) cut off", inflight.count)
    finally:
        if debug is not None:
            await debug.cleanup()
        await runner.cleanup()


def _supervise(
    config: Config,
    sock: socket.socket,
    context: ssl.SSLContext | None,
    count: int,
    debug_sock: socket.socket | None = None,
) -> int:
    children: dict[int, int] = {}  # pid -> worker slot
    stopping = False

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                _run_worker(config, sock, context, debug_sock)
            except BaseException:
                log.exception("worker %d failed", slot)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = slot

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    gc.freeze()  # what the parent allocated stays shared: the workers' GC will not touch it
    for slot in range(count):
        spawn(slot)
    # The parent keeps the socket open (it never accepts) so a replacement worker can inherit it.
    last_restart = 0.0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        slot = children.pop(pid)
        metrics.process_dead(pid)
        if stopping:
            continue
        log.error("worker %d (pid %d) exited with status %d; restarting", slot, pid, status)
        if time.monotonic() - last_restart < 1:
            time.sleep(1)
        last_restart = time.monotonic()
        spawn(slot)
    sys.stdout.flush()
    return 0
