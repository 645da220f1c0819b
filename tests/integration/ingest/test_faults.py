"""cryo_ingest under faults: a worker killed mid-range, a Monad-like node, a reorg during extraction.

Each ends with the same guarantees: exactly one committed version per dataset
and range, authored by the attempt that won; nothing a failed attempt staged is
reachable through the registry; retries land on the same deterministic version.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from trace_core.datasets import cleanup, commit, registry
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import reaper, tasks
from trace_core.ingest import errors as ingest_errors
from trace_core.ingest import extract

from tests.fixtures import processes
from tests.integration.ingest import chain as chain_mod
from tests.integration.ingest.helpers import committed_table, run_attempt

REPO = Path(__file__).resolve().parents[3]


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.03)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def store(make_s3_store):
    return make_s3_store()


@pytest.fixture
def spawn_worker(database_url: str, moto_url: str, store, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory: a real `trace-lite worker` process running cryo_ingest (stopped after the test)."""
    with processes.started(tmp_path) as started:

        def spawn(queue: str) -> subprocess.Popen[bytes]:
            env = {**os.environ, "TRACE_DATABASE_URL": database_url, "AWS_ENDPOINT_URL": moto_url,
                   "TRACE_DATASETS_BUCKET": store.bucket,
                   "TRACE_HOME": str(tmp_path / "home"), "TRACE_LEASE_SECONDS": "2"}
            return started.start(
                [sys.executable, "-m", "trace_core.cli", "worker", "--queue", queue, "--poll-seconds", "0.2"],
                env=env, cwd=REPO)

        yield spawn


def test_a_worker_killed_mid_range_is_retried_into_one_committed_version(
    chain, conn, store, spawn_worker, tmp_path
):
    # GIVEN a slow (rate-limited) ingest of 60 blocks in 12 sub-ranges, picked up by a worker process
    queue = f"ingest-{uuid.uuid4().hex[:8]}"
    body = {"chain_id": 10143, "namespace": "killed", "datasets": ["blocks", "transactions", "logs"],
            "range_start": 0, "range_end": 60, "extract": {"chunk_blocks": 5},
            "rpc": {"urls": [chain.url], "requests_per_second": 40, "max_blocks_per_logs_request": 5}}
    task = tasks.create(conn, task_models.CreateTask(operator="cryo_ingest", payload=body, queue=queue,
                                                     max_attempts=3, backoff_base_ms=0))
    first = spawn_worker(queue)
    attempt1 = f"staging/{task.task_id}/attempt-1/"
    # WHEN the worker is SIGKILLed once attempt 1 has staged its first files
    wait_for(lambda: list(store.list(attempt1)))
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    staged_by_dead = {i.key for i in store.list(attempt1)}
    assert tasks.get(conn, task.task_id).status == "running"
    # AND its lease expires and is reaped, and a healthy worker takes the retry
    wait_for(lambda: reaper.reap(conn) or tasks.get(conn, task.task_id).status != "running", timeout=15)
    spawn_worker(queue)
    wait_for(lambda: tasks.get(conn, task.task_id).status == "completed", timeout=60)

    # THEN attempt 1 expired and attempt 2 succeeded
    assert [a["outcome"] for a in tasks.attempts(conn, task.task_id)] == ["expired", "succeeded"]
    # AND each dataset has exactly one committed version, published by attempt 2
    for dataset in ("blocks", "transactions", "logs"):
        [version] = registry.list_committed(conn, f"killed/{dataset}")
        assert (version.created_by_task, version.created_by_attempt) == (task.task_id, 2)
        _, manifest = commit.read_manifest(conn, store, version.dataset_version)
        assert commit.verify_objects(store, version, manifest) == []
        assert [(f.range_start, f.range_end) for f in manifest.files] == [(s, s + 5) for s in range(0, 60, 5)]
    blocks = committed_table(conn, store, registry.list_committed(conn, "killed/blocks")[0].dataset_version)
    assert sorted(blocks.column("block_number").to_pylist()) == list(range(60))
    # AND nothing the dead attempt staged is reachable from a committed version
    published = {i.key for i in store.list("cryo/")}
    assert staged_by_dead and not (staged_by_dead & published)

    # WHEN staging is swept after the grace period
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    report = cleanup.sweep(conn, store, older_than=dt.timedelta(hours=1), now=later)
    # THEN both attempts' staging is gone and the committed data is intact without it
    assert attempt1 in report.deleted and list(store.list(f"staging/{task.task_id}/")) == []
    for version in registry.list_committed(conn, "killed/blocks"):
        _, manifest = commit.read_manifest(conn, store, version.dataset_version)
        assert commit.verify_objects(store, version, manifest) == []


def test_a_monad_like_node_is_served_with_geth_calls_and_small_log_requests(
    chain, conn, store, make_settings, moto_url, make_attempt, monad_node
):
    settings = make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)
    base = {"chain_id": 10143, "namespace": "monad", "range_start": 0, "range_end": 40}
    # GIVEN a node without trace_* whose eth_getLogs spans at most 10 blocks
    # WHEN logs are extracted with the pool's limit of 10 blocks per request, and calls via geth_calls
    ok = make_attempt({**base, "datasets": ["blocks", "logs", "erc20_transfers", "geth_calls"],
                       "rpc": {"urls": [monad_node.url], "max_blocks_per_logs_request": 10, "trace_api": False}})
    done = run_attempt(conn, ok, settings)
    # THEN everything commits, logs match the node, and no trace_* call was ever made
    assert done.status == "completed"
    [logs] = registry.list_committed(conn, "monad/logs")
    assert logs.row_count == len(chain.logs(0, 40)) > 0
    assert registry.list_committed(conn, "monad/geth_calls")[0].row_count > 0
    assert not [m for m in monad_node.seen if m.startswith("trace_")]

    # WHEN the pool asks for more blocks per eth_getLogs than the node allows THEN the attempt fails, retryably
    too_wide = make_attempt({**base, "datasets": ["logs"],
                             "rpc": {"urls": [monad_node.url], "max_blocks_per_logs_request": 1000, "max_retries": 0}})
    with pytest.raises(ingest_errors.ExtractError, match="could not collect"):
        run_attempt(conn, too_wide, settings)

    # WHEN traces are asked of it without saying the pool lacks trace_* THEN the failure says what to use instead
    traces = make_attempt({**base, "datasets": ["traces"], "rpc": {"urls": [monad_node.url], "max_retries": 0}})
    with pytest.raises(ingest_errors.UnsupportedDatasetError, match="geth_calls") as caught:
        run_attempt(conn, traces, settings)
    assert caught.value.retryable is False
    assert registry.list_committed(conn, "monad/traces") == []


class _ReorgAfterFirstSubrange:
    """Real Cryo, but the chain reorgs its last blocks right after the first sub-range is written."""

    def __init__(self, url: str) -> None:
        self._cryo = extract.CryoExtractor()
        self._url = url
        self.calls = 0

    @property
    def version(self) -> str:
        return self._cryo.version

    def freeze(self, datasets, start, end, out_dir, *, rpc_url, request) -> None:
        self._cryo.freeze(datasets, start, end, out_dir, rpc_url=rpc_url, request=request)
        self.calls += 1
        if self.calls == 1:
            chain_mod.call(self._url, "anvil_reorg", [3, []])


def test_a_reorg_during_extraction_fails_the_attempt_and_publishes_nothing(
    make_anvil, conn, store, make_settings, moto_url, make_attempt
):
    # GIVEN a private chain of 30 blocks
    url = make_anvil()
    head = chain_mod.seed(url, 30)
    settings = make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)
    lease = make_attempt({"chain_id": 10143, "namespace": "reorged", "datasets": ["blocks"], "range_start": 0,
                          "range_end": head + 1, "extract": {"chunk_blocks": 10}, "rpc": {"urls": [url]}})
    # WHEN its last 3 blocks are replaced while the range is being extracted
    with pytest.raises(ingest_errors.ChainChangedError, match="reorg") as caught:
        run_attempt(conn, lease, settings, extractor=_ReorgAfterFirstSubrange(url))
    # THEN the attempt fails retryably and nothing is published
    assert caught.value.retryable is True
    assert registry.list_committed(conn, "reorged/blocks") == []
