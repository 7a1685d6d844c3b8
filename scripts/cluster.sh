#!/usr/bin/env bash
# `make cluster`: PostgreSQL, a blob store, three `berth serve` replicas and nginx on this
# machine, all on 127.0.0.1 with state in a temp dir; prints the address to point docker at.
# Ctrl-C (or SIGTERM) stops everything. Options: --port N (default 5000), --replicas N.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m tests.support.cluster "$@"
