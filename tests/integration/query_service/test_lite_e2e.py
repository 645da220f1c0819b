"""Done-when of issue 5, as a user runs it: after a local chain sync, `trace-lite query "select count(*) from
blocks"` answers, and equals the number of blocks synced.

Real everything: `trace-lite up` (embedded Postgres, moto server, anvil, the Query Service, the host with a
cryo_ingest worker), `trace-lite chain seed`, `trace-lite apply` of a fixed-target chain_sync job, then queries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "trace_core.cli"]
BLOCKS = 60
JOB = f"""
apiVersion: trace/v1
kind: chain_sync
name: qs-e2e
chain_id: 10143
namespace: monad_local
rpc:
  urls: ["${{TRACE_RPC_URL}}"]
datasets: [blocks, transactions]
mode:
  type: fixed_target
  from_block: 0
  to_block: {BLOCKS}
chunk_size: 20
max_inflight: 4
"""


def run(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "lite"
    try:
        yield home
    finally:
        run(home, "down")  # always, whatever the test left running


def _wait_completed(home: Path, job: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = run(home, "status", "--job", job).stdout
        if f"job {job}: completed" in status or time.monotonic() > deadline:
            return status
        time.sleep(1)


def test_after_a_local_chain_sync_trace_lite_query_counts_the_synced_blocks(home: Path, tmp_path: Path):
    # GIVEN the Lite stack with a seeded chain, synced to block 60 (exclusive)
    assert (up := run(home, "up")).returncode == 0, up.stderr
    assert (seed := run(home, "chain", "seed", "--blocks", str(BLOCKS + 5))).returncode == 0, seed.stderr
    job = tmp_path / "job.yaml"
    job.write_text(JOB)
    assert (applied := run(home, "apply", "--file", str(job))).returncode == 0, applied.stderr
    status = _wait_completed(home, "qs-e2e")
    assert "job qs-e2e: completed" in status, status
    # WHEN the user asks
    answer = run(home, "query", "select count(*) as n, min(block_number) as lo, max(block_number) as hi "
                                "from blocks", "--format", "json")
    # THEN the answer equals the blocks synced: [0, 60) exactly once each
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout) == [{"n": BLOCKS, "lo": 0, "hi": BLOCKS - 1}]
    # AND transactions join the blocks they belong to, and a dataset not synced is not granted
    joined = run(home, "query", "select count(*) as orphans from transactions t left join blocks b "
                                "using (block_number) where b.block_number is null", "--format", "json")
    assert json.loads(joined.stdout) == [{"orphans": 0}], joined.stderr
    refused = run(home, "query", "select count(*) from logs")
    assert refused.returncode == 1 and "relation_not_granted" in refused.stderr
