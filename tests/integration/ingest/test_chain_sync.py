"""A chain_sync job driven to its target by cryo_ingest: the planner's ranges become committed versions."""

from __future__ import annotations

import itertools

from trace_core.chainsync import jobs, planner
from trace_core.chainsync import spec as spec_mod
from trace_core.datasets import naming, registry
from trace_core.dispatcher import models as task_models
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
    spec = spec_mod.parse(SPEC.format(name="ingest-e2e", url=chain.url), environ={})
    job = jobs.apply(conn, spec)
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
    # AND each range was one task for both datasets
    ranges_tasks = conn.execute("SELECT range_start, array_agg(DISTINCT task_id) AS tasks FROM state.sync_ranges "
                                "WHERE job_id = %s GROUP BY range_start ORDER BY range_start", (job.job_id,)).fetchall()
    assert [len(r["tasks"]) for r in ranges_tasks] == [1, 1, 1]
    assert conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"] == 3
    # AND every version is the one a task of that dataset alone would publish: same id, same manifest
    for dataset in ("blocks", "logs"):
        for version in registry.list_committed(conn, f"ingest_e2e/{dataset}"):
            assert version.dataset_version == naming.version_id(
                chain_id=10143, dataset_key=f"ingest_e2e/{dataset}", range_start=version.range_start,
                range_end=version.range_end, config_hash=planner.config_hash(spec, dataset, 0))
    alone = tasks.create(conn, task_models.CreateTask(operator="cryo_ingest", payload={
        "chain_id": 10143, "datasets": ["logs"], "dataset_keys": {"logs": "ingest_e2e/logs"},
        "range_start": 20, "range_end": 40, "rpc": spec.rpc.model_dump(),
        "config_hash": planner.config_hash(spec, "logs", 0)}))
    conn.commit()
    lease = tasks.claim(conn, alone.task_id, worker_id="test", lease_seconds=60)
    done = run_attempt(conn, lease, settings)  # single publication: the same manifest commits as a no-op
    assert done.status == "completed"
    [logs_20] = [v for v in registry.list_committed(conn, "ingest_e2e/logs") if v.range_start == 20]
    assert done.outputs["versions"]["logs"]["dataset_version"] == logs_20.dataset_version
