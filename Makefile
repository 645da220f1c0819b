# Two commands on a fresh clone: `make demo` and `make test`. Both do all set-up first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# SAM CLI (for the infra test of `sam local invoke`'s template lookup) pins boto3, click and pydantic
# itself: it lives in its own locked environment (uv.lock's `sam` group) so the platform's pins stay ours.
SAM_VENV := .venv-sam
# cryo ships wheels for CPython 3.10-3.12: pick the first interpreter in range.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null && { echo $$p; break; }; done)
PYTEST_ARGS ?=

.PHONY: install lock demo test test-all bench lint typecheck synth clean down

install: $(VENV)/.installed node_modules/.installed $(BIN)/bwrap

# bubblewrap for the Lite user-function sandbox, from Debian's package into the venv (not system-wide).
$(BIN)/bwrap: scripts/fetch-bwrap.sh | $(VENV)/.installed
	scripts/fetch-bwrap.sh $(VENV)
	@touch $@

# Everything installs from the locks: uv.lock (Python, with hashes) and package-lock.json (npm ci).
# uv itself comes first, from requirements-uv.txt (hashed, derived from uv.lock).
$(VENV)/.installed: pyproject.toml uv.lock $(BIN)/uv
	@# --locked: refuse a uv.lock that is out of step with pyproject.toml (never resolve anew here);
	@# --inexact: keep pip, which the Lambda layer build uses.
	UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(BIN)/uv sync --locked --inexact --all-extras --quiet
	UV_PROJECT_ENVIRONMENT=$(SAM_VENV) UV_PYTHON_DOWNLOADS=never $(BIN)/uv sync --locked --only-group sam \
		--no-install-project --python $(PYTHON) --quiet
	@touch $@

# uv alone, from its hashed pin: all `make lock` needs (the lock may be out of step with pyproject.toml then).
$(BIN)/uv: requirements-uv.txt
	@if [ -z "$(PYTHON)" ]; then echo "error: Trace needs Python 3.11 or 3.12 (cryo has no wheels for other versions)"; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-uv.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found: install Node.js 18+ (it brings npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# After changing a dependency in pyproject.toml: re-resolve uv.lock and rewrite the files derived from it
# (requirements-uv.txt, layers/trace_core/requirements-lambda.txt, services/{worker,query}/requirements.txt).
# `make lock ARGS=--upgrade` takes the newest versions pyproject.toml allows.
lock: $(BIN)/uv
	scripts/lock.sh $(ARGS)

demo: install
	$(BIN)/trace-lite demo

# Everything `make test` runs: the quality gates (lint, typecheck), then the unit, integration and e2e
# suites; slow soak/fault runs are opt-in (-m slow).
test: install lint typecheck
	$(BIN)/pytest -m "not slow and not docker" --durations=30 $(PYTEST_ARGS)

test-all: install
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks against the reference tools, by bench/method.py (paired rounds, disturbed rounds excluded, answers
# checked by content; long; figures go to docs/benchmarks.md by hand). Each holds the machine's CPU lock while
# it runs; all run even if one misses its target or fails, and then `make bench` fails naming them.
BENCH_LOCK ?= /tmp/trace-cpu.lock
BENCH_OUT ?= .trace-lite/bench
bench: install
	mkdir -p $(BENCH_OUT)
	failed=""; \
	flock $(BENCH_LOCK) $(BIN)/python -m bench.dispatcher_throughput || failed="$$failed dispatcher_throughput"; \
	flock $(BENCH_LOCK) $(BIN)/python -m bench.chain_sync_e2e --json $(BENCH_OUT)/chain_sync_e2e.json \
		|| failed="$$failed chain_sync_e2e"; \
	flock $(BENCH_LOCK) $(BIN)/python -m bench.ingest_rss --json $(BENCH_OUT)/ingest_rss.json || failed="$$failed ingest_rss"; \
	flock $(BENCH_LOCK) $(BIN)/python -m bench.query_service --json $(BENCH_OUT)/query_service.json \
		|| failed="$$failed query_service"; \
	flock $(BENCH_LOCK) $(BIN)/python -m bench.udf_invoke --out $(BENCH_OUT)/udf_invoke.json || failed="$$failed udf_invoke"; \
	if [ -n "$$failed" ]; then echo "bench: missed a target or failed:$$failed (JSON in $(BENCH_OUT))"; exit 1; fi

# The CloudFormation templates under cdk.out/ (offline; builds a trace_core-only layer when build/layer is
# missing: `scripts/build_lambda_assets.sh` first for a deployable one, docs/deploy.md).
synth: install
	node_modules/.bin/cdk synth -c trace:stage=$(or $(STAGE),dev) --quiet

# Ruff with the rule set in pyproject.toml ([tool.ruff.lint]: line length included); under a second.
lint: install
	$(BIN)/ruff check layers functions cdk tests bench

# mypy, strict on trace_core (pyproject.toml [tool.mypy]); .mypy_cache keeps a re-run to seconds.
typecheck: install
	$(BIN)/mypy

down:
	-$(BIN)/trace-lite down

clean: down
	rm -rf $(VENV) $(SAM_VENV) node_modules .trace-lite cdk.out
