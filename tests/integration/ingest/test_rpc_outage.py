"""An RPC that answers errors, then recovers: the range task fails with the RPC's message, is retried with
backoff, `status` shows the error meanwhile, and the job ends with no gap and no duplicate."""

from __future__ import annotations

from typing import Any

from trace_core.chainsync import jobs
from trace_core.chainsync import spec as spec_mod
from trace_core.datasets import registry
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks

from tests.integration.ingest import chain as chain_mod
from tests.integration.ingest.helpers import committed_table, run_attempt

SPEC = """
name: rpc-outage
chain_id: 10143
rpc: {{urls: ["{url}"], max_blocks_per_logs_request: 10}}
datasets: [blocks]
mode: {{type: fixed_target, from_block: 0, to_block: 30}}
chunk_size: 15
max_inflight: 2
max_attempts: 5
"""
OUTAGE = "upstream node unavailable: try again later"


class Switch:
    """While ``down``, every JSON-RPC call gets the provider's error; then calls reach the node again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.down = True

    def answer(self, item: dict[str, Any]) -> dict[str, Any]:
        return chain_mod.rpc_error(item, -32000, OUTAGE) if self.down else chain_mod.forward(self.upstream, item)


def attempt(conn, lease, settings) -> task_models.Task:
    """One worker attempt: run the operator; an exception fails the attempt (retryable), as the worker does."""
    try:
        return run_attempt(conn, lease, settings)
    except Exception as exc:  # noqa: BLE001
        return tasks.complete(conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                              result=task_models.Failure(error=f"{type(exc).__name__}: {exc}"))


def test_an_rpc_outage_is_retried_and_shown_then_the_job_finishes_without_gap_or_duplicate(
        chain, conn, make_s3_store, make_settings, moto_url):
    store = make_s3_store()
    settings = make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)
    switch = Switch(chain.url)
    with chain_mod.rpc_front(switch.answer) as url:
        jobs.apply(conn, spec_mod.parse(SPEC.format(url=url), environ={}))
        # WHEN both range tasks run while the RPC answers errors
        leases = tasks.claim_next(conn, worker_id="w", operators=["cryo_ingest"], limit=10)
        assert len(leases) == 2
        failed = [attempt(conn, lease, settings) for lease in leases]
        # THEN each attempt failed with the RPC's message and is queued again for later (backoff)
        assert all(t.status == "queued" and OUTAGE in (t.last_error or "") for t in failed)
        assert all(t.not_before > t.updated_at for t in failed)
        assert tasks.claim_next(conn, worker_id="w", operators=["cryo_ingest"], limit=10) == []  # not due yet
        _, [stream] = jobs.progress(conn, "rpc-outage")
        assert OUTAGE in (stream.last_error or "") and stream.cursor == 0
        # WHEN the RPC is back and the backoff has passed
        switch.down = False
        conn.execute("UPDATE state.tasks SET not_before = now() WHERE status = 'queued'")
        conn.execute("UPDATE state.outbox SET not_before = now() WHERE published_at IS NULL")
        for lease in tasks.claim_next(conn, worker_id="w", operators=["cryo_ingest"], limit=10):
            assert attempt(conn, lease, settings).status == "completed"
        # THEN the job is complete: [0, 30) committed once, no gap, no duplicate, and the error is gone
        assert jobs.find(conn, "rpc-outage")["status"] == "completed"
        numbers = sorted(n for v in registry.list_committed(conn, "rpc_outage/blocks")
                         for n in committed_table(conn, store, v.dataset_version).column("block_number").to_pylist())
        assert numbers == list(range(30))
        _, [stream] = jobs.progress(conn, "rpc-outage")
        assert stream.cursor == 30 and stream.failed == 0

