"""The operator registry: what a worker says it can run is what it claims by."""

from __future__ import annotations

import subprocess
import sys


def test_a_fresh_worker_lists_the_platform_operators():
    # GIVEN a fresh interpreter (nothing imported the ingest operator yet)
    code = "from trace_core.worker import operators; print(','.join(operators.names()))"
    # WHEN the worker asks which operators it runs (the names it claims tasks by)
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # THEN cryo_ingest is among them, not only noop: else its tasks are never claimed
    assert {"noop", "cryo_ingest"} <= set(listed.strip().split(","))
