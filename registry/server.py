"""Run the registry: one listening socket, shared by N worker processes, each on uvloop.

The parent migrates the database, binds the socket, forks the workers and forwards SIGTERM and
SIGINT to them; each worker drains its in-flight requests (http.draintimeout) before exiting.
Each worker reports through a pipe once it is serving, or why it could not start. A worker
that dies after that, or is killed by a signal, is replaced; one that gives up while starting
stops the whole server with its error, since a replacement would fail the same way. With one
worker, the parent serves by itself. The workers spread the connections evenly between them
(registry.connection_balance).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import select
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final

import uvloop
from aiohttp import web

from registry import allocator, log_redaction, logs, metrics
from registry.app import create_app
from registry.config import Config, ConfigError
from registry.connection_balance import Acceptor, ConnectionCounts
from registry.db import upgrade
from registry.http.debug import start_debug_server
from registry.http.errors import hide_server_software
from registry.http.keys import INFLIGHT

log = logging.getLogger("berth.serve")

_READY: Final = "ready"
_CONFIG: Final = "config"
_FAILED: Final = "failed"
# A thread (a file write, an fsync, sendfile) that wants the GIL back while the event loop runs
# Python gets it after at most this long, for each call it makes: at CPython's default of 5 ms,
# the three calls of a small upload's commit took 10-30 ms under load, and uploads waited on them.
_SWITCH_INTERVAL: Final = 0.001


class StartupError(Exception):
    """The server could not start, for a reason other than its configuration (one line)."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return first if isinstance(exc, ConfigError | OSError) else f"{type(exc).__name__}: {first}"


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
    log_redaction.install()
    logs.configure(config.log)
    hide_server_software()
    allocator.keep_freed_memory()
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
        shown = log_redaction.redact(url)
        raise ConfigError(f"database: cannot migrate {shown} (see the log above)")


def _run_worker(
    config: Config,
    sock: socket.socket,
    context: ssl.SSLContext | None,
    debug_sock: socket.socket | None = None,
    ready: Callable[[], None] = lambda: None,
    balance: tuple[ConnectionCounts, int] | None = None,
) -> None:
    """Serve; ConfigError or StartupError if the app cannot start."""
    sys.setswitchinterval(_SWITCH_INTERVAL)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(config, sock, context, debug_sock, ready, balance))
    finally:
        logs.flush()  # the last loop iteration's lines


async def _serve(
    config: Config,
    sock: socket.socket,
    context: ssl.SSLContext | None,
    debug_sock: socket.socket | None,
    ready: Callable[[], None],
    balance: tuple[ConnectionCounts, int] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, let in-flight requests finish (bodies
    still arriving included) for up to http.draintimeout, and shut down."""
    try:
        app = create_app(config)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,  # registry.http.observe writes the access log
            shutdown_timeout=config.http.draintimeout,
        )
        await runner.setup()
        server = runner.server
        assert server is not None
        counts, slot = balance if balance is not None else (None, 0)
        acceptor = Acceptor(
            sock,
            server,
            lambda: len(server.connections),
            ssl_context=context,
            counts=counts,
            slot=slot,
        )
        acceptor.start()
        debug = await start_debug_server(app, debug_sock) if debug_sock is not None else None
    except ConfigError:
        raise
    except Exception as exc:
        log.debug("start-up failed", exc_info=True)
        raise StartupError(log_redaction.redact(_one_line(exc))) from exc
    ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        acceptor.close()
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
    ready: set[int] = set()
    stopping = False
    failure: Exception | None = None
    reports, report_end = os.pipe()
    os.set_blocking(reports, False)
    counts = ConnectionCounts(count)

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            os.close(reports)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                _run_worker(
                    config,
                    sock,
                    context,
                    debug_sock,
                    lambda: _report(report_end, _READY, ""),
                    (counts, slot),
                )
                code = 0
            except ConfigError as exc:
                _report(report_end, _CONFIG, str(exc))
            except StartupError as exc:
                _report(report_end, _FAILED, str(exc))
            except BaseException:
                log.exception("worker %d failed", slot)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = slot

    def stop_all() -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

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
    pending = b""
    while children:
        select.select([reports], [], [], 0.5)
        dead = list(_reaped())  # first: whatever they wrote before dying is in the pipe now
        pending, lines = _read_reports(reports, pending)
        for pid, kind, message in lines:
            if kind == _READY:
                ready.add(pid)
            elif failure is None:
                failure = ConfigError(message) if kind == _CONFIG else StartupError(message)
        for pid, status in dead:
            if pid not in children:
                continue
            slot = children.pop(pid)
            metrics.process_dead(pid)
            counts.reset(slot)
            if stopping:
                continue
            if pid not in ready and not os.WIFSIGNALED(status):  # it gave up starting
                if failure is None:
                    code = os.waitstatus_to_exitcode(status)
                    failure = StartupError(f"worker {slot} exited with status {code} starting")
                continue
            ready.discard(pid)
            log.error("worker %d (pid %d) exited with status %d; restarting", slot, pid, status)
            if time.monotonic() - last_restart < 1:
                time.sleep(1)
            last_restart = time.monotonic()
            spawn(slot)
        if failure is not None and not stopping:
            stop_all()
    os.close(reports)
    os.close(report_end)
    sys.stdout.flush()
    if failure is not None:
        raise failure
    return 0


def _report(fd: int, kind: str, message: str) -> None:
    """One line to the parent; atomic, being shorter than PIPE_BUF."""
    line = f"{os.getpid()} {kind} {message}".replace("\n", " ")[:1000] + "\n"
    with contextlib.suppress(OSError):
        os.write(fd, line.encode(errors="replace"))


def _read_reports(fd: int, pending: bytes) -> tuple[bytes, list[tuple[int, str, str]]]:
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            pending += chunk
    *complete, rest = pending.split(b"\n")
    lines = []
    for raw in complete:
        pid, kind, message = raw.decode(errors="replace").split(" ", 2)
        lines.append((int(pid), kind, message))
    return rest, lines


def _reaped() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status
