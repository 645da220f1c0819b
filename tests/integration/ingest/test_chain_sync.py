"""A chain_sync job driven to its target by cryo_ingest: the planner's ranges become committed versions."""

from __future__ import annotations

import itertools

from trace_core.chainsync import jobs
from trace_core.chainsync import spec as spec_mod
from trace_core.datasets import registry
from trace_core.dispatcher import tasks

from tests.integration.ingest.helpers import committed_table, run_attempt

SPEC = """
name: {name}
chain_id: 10143
rpc: {{urls: ["{url}"], max_blocks_per_logs_request: 10}}
datasets: [blocks, logs]
mode: {{type: fixed_target, from_block: 0, to_block: 50}}
chunk_size: 20
max_inflight: 2
"""


def test_a_fixed_target_job_ends_with_contiguous_committed_versions(chain, conn, make_s3_store, make_settings,
                                                                    moto_url):
    store = make_s3_store()
    settings = make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)
    # GIVEN a chain_sync job for blocks [0, 50) in ranges of 20
    job = jobs.apply(conn, spec_mod.parse(SPEC.format(name="ingest-e2e", url=chain.url), environ={}))
    # WHEN workers run every range task the planner schedules (the commit hook tops the plan up)
    for _ in range(20):
        leases = tasks.claim_next(conn, worker_id="test", operators=["cryo_ingest"], limit=10)
        if not leases:
            break
        for lease in leases:
            assert run_attempt(conn, lease, settings).status == "completed"
    # THEN the job is completed and its visible versions tile [0, 50) for each dataset
    assert jobs.find(conn, "ingest-e2e")["status"] == "completed"
    visible = jobs.visible_versions(conn, job.job_id)
    for dataset in ("blocks", "logs"):
        rows = sorted((r for r in visible if r["dataset_key"] == f"ingest_e2e/{dataset}"),
                      key=lambda r: r["range_start"])
        assert [(r["range_start"], r["range_end"]) for r in rows] == [(0, 20), (20, 40), (40, 50)]
        committed = registry.list_committed(conn, f"ingest_e2e/{dataset}")
        assert {v.dataset_version for v in committed} == {r["dataset_version"] for r in rows}
    # AND the committed blocks are exactly the chain's blocks [0, 50), linked range to range
    blocks = registry.list_committed(conn, "ingest_e2e/blocks")
    numbers = [n for v in blocks for n in committed_table(conn, store, v.dataset_version).column(
        "block_number").to_pylist()]
    assert sorted(numbers) == list(range(50))
    for left, right in itertools.pairwise(blocks):
        assert left.last_block_hash == right.first_parent_hash == chain.block(left.range_end - 1)["hash"]
