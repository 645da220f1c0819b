# Two commands on a fresh clone: `make demo` and `make test`. Both do all set-up first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# cryo ships wheels for CPython 3.10-3.12: pick the first interpreter in range.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null && { echo $$p; break; }; done)
PYTEST_ARGS ?=

.PHONY: install demo test test-all bench lint clean down

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "error: Trace needs Python 3.11 or 3.12 (cryo has no wheels for other versions)"; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found: install Node.js 18+ (it brings npm)"; exit 1; }
	@# The lock pins every version. Not `npm ci`: npm 11 leaves the other platforms' optional anvil
	@# binaries out of the lock, and `npm ci` then refuses it as out of sync (docs/decisions/0004).
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

demo: install
	$(BIN)/trace-lite demo

# Everything `make test` runs: unit, integration and e2e suites; slow soak/fault runs are opt-in (-m slow).
test: install
	$(BIN)/pytest -m "not slow and not docker" $(PYTEST_ARGS)

test-all: install
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks against the reference tools (long; figures go to docs/benchmarks.md by hand).
bench: install
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m bench.dispatcher_throughput
	$(BIN)/python -m bench.chain_sync_e2e
	$(BIN)/python -m bench.ingest_rss
	$(BIN)/python -m bench.query_service

lint: install
	$(BIN)/ruff check layers functions cdk tests bench

down:
	-$(BIN)/trace-lite down

clean: down
	rm -rf $(VENV) node_modules .trace-lite cdk.out
