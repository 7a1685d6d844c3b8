"""`berth serve`: run the registry."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

from berth.cli import CommandError

if TYPE_CHECKING:  # the registry (aiohttp, SQLAlchemy) loads only when a command needs it
    from registry.config import Config

EXIT_CONFIG: Final = 2  # a bad configuration, as for a usage error


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the registry server",
        description="Run the OCI registry. Defaults need no config file: SQLite and blobs "
        "under the data directory, listening on 127.0.0.1:5000.",
    )
    add_config_arguments(parser)
    parser.add_argument("--addr", metavar="HOST:PORT", help="listen address (http.addr)")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes sharing the socket (http.workers; default: one per CPU)",
    )
    parser.set_defaults(handler=run)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config file (see config.example.yaml)"
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data directory (datadir; default ./data)"
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """Config file, then BERTH_* variables, then command-line flags; ConfigError if bad."""
    from registry.config_load import load_config

    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides["datadir"] = args.data_dir
    if getattr(args, "addr", None) is not None:
        overrides["http.addr"] = args.addr
    if getattr(args, "workers", None) is not None:
        overrides["http.workers"] = args.workers
    return load_config(args.config, overrides=overrides)


def config_failure(args: argparse.Namespace, exc: Exception) -> int:
    """Report a bad configuration in one line; the exit status for it."""
    print(f"berth {args.command}: {exc}", file=sys.stderr)
    return EXIT_CONFIG


def run(args: argparse.Namespace) -> int:
    from registry.config import ConfigError

    try:
        config = config_from_args(args)  # before the server's imports: a bad config fails fast
    except ConfigError as exc:
        return config_failure(args, exc)
    with _metrics_directory():
        from registry.server import StartupError, serve

        try:
            return serve(config)
        except ConfigError as exc:
            return config_failure(args, exc)
        except StartupError as exc:
            raise CommandError(str(exc)) from None


_METRICS_PREFIX = "berth-metrics-"


def _remove_stale_metrics_directories() -> None:
    """Private metrics directories of servers that were killed (SIGKILL skips the cleanup):
    named after the server's pid, removed once no process has that pid."""
    for directory in Path(tempfile.gettempdir()).glob(f"{_METRICS_PREFIX}*-*"):
        pid = directory.name.removeprefix(_METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _metrics_directory() -> Iterator[None]:
    """Where every worker's Prometheus values go (prometheus-client's multiprocess mode). Set
    before anything imports prometheus-client, which reads it once. The user's own
    PROMETHEUS_MULTIPROC_DIR is emptied of old values; otherwise a private one is made."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for old in Path(given).glob("*.db"):
            old.unlink()
        yield
        return
    _remove_stale_metrics_directories()
    directory = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)
