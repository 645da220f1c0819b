#!/usr/bin/env bash
# Build the Lambda layer into build/layer/ without Docker (pip downloads manylinux
# wheels for CPython 3.12 / x86_64). Run before `cdk deploy`; `cdk synth` without it builds a
# trace_core-only layer itself, whose template refuses deployment (docs/decisions/1306).
#   scripts/build_lambda_assets.sh            # full layer (needs PyPI access)
#   scripts/build_lambda_assets.sh --no-deps  # trace_core only: synth works, deploy would not
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
PYTHONPATH="cdk${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m trace_cdk.assets "$@"
