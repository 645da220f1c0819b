#!/usr/bin/env bash
# The Python dependency lock: uv.lock (every extra and group, universal, with hashes) and the
# requirement files derived from it. `make lock` runs this after a change to pyproject.toml;
# `--check` (run by the tests) fails if the lock or a derived file is out of date.
#   scripts/lock.sh            # re-resolve what pyproject.toml asks for, rewrite the derived files
#   scripts/lock.sh --upgrade  # the same, taking the newest versions pyproject.toml allows
#   scripts/lock.sh --check    # offline: is everything in step with pyproject.toml and uv.lock?
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-.venv/bin/uv}"
export UV_PYTHON_DOWNLOADS=never

# Derived files: path, then the export options. Boto3 and botocore are in Lambda's runtime already.
export_to() {
  local out="$1"; shift
  "$UV" export --frozen --quiet --no-header --format requirements.txt "$@" -o "$out"
}
derive() {  # $1: folder to write into (the repository root, or a scratch copy for --check)
  export_to "$1/requirements-uv.txt" --only-group bootstrap
  export_to "$1/layers/trace_core/requirements-lambda.txt" --only-group lambda \
    --no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer
  # Each Fargate image installs the base dependencies and its own extra, never `lite` (docs/architecture.md).
  for image in worker query; do
    export_to "$1/services/$image/requirements.txt" --no-dev --extra "$image" --no-emit-project
  done
}

case "${1:-}" in
  --check)
    "$UV" lock --check --offline --quiet
    scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
    mkdir -p "$scratch/layers/trace_core" "$scratch/services/worker" "$scratch/services/query"
    derive "$scratch"
    for file in requirements-uv.txt layers/trace_core/requirements-lambda.txt services/worker/requirements.txt \
                services/query/requirements.txt; do
      if ! cmp -s "$scratch/$file" "$file"; then
        echo "$file is out of date with uv.lock: run \`make lock\`" >&2
        exit 1
      fi
    done
    ;;
  --upgrade) "$UV" lock --upgrade; derive . ;;
  "") "$UV" lock; derive . ;;
  *) echo "usage: scripts/lock.sh [--check | --upgrade]" >&2; exit 2 ;;
esac
