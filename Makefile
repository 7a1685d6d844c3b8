# Berth: `make run` starts the registry on 127.0.0.1:5000; `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint typecheck pytest test-env bench bench-s3 clean cluster

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# compat: a path entry, not the default editable import hook, which costs every `berth`
	# process about 12 ms of imports at start-up (pathlib, re, urllib) before main() runs
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]' --config-settings editable_mode=compat
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/berth serve --addr 127.0.0.1:5000 --data-dir ./data

# Debian packages and services (dockerd) the tests use; idempotent.
test-env:
	bash scripts/test-env.sh

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: test-env lint typecheck pytest

# The inner loop: no e2e, engines (PostgreSQL, SeaweedFS, nginx) or browser.
test-fast: lint typecheck
	$(BIN)/pytest -m "not e2e and not postgres and not s3 and not cluster and not browser"

# Replicas on PostgreSQL and SeaweedFS (S3) behind nginx, on this machine (docs/scale-out.md).
cluster: $(STAMP)
	bash scripts/cluster.sh $(CLUSTER_ARGS)

bench: $(STAMP) test-env
	$(BIN)/python -m bench

bench-s3: $(STAMP) test-env  # both registries on one SeaweedFS (Berth's S3 driver vs Distribution's)
	$(BIN)/python -m bench --storage s3

clean:
	rm -rf $(VENV) build *.egg-info
