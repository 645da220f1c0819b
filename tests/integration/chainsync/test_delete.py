"""Deleting a chain_sync job on real Postgres, with ranges extracted by Cryo from anvil into moto's S3.

What goes: the job, its cursors, its ledger, its tasks (attempts, dead-letter rows, wake-ups). What stays
unless --drop-data: its dataset versions, which a job re-applied with the same chain and namespace adopts.
"""

from __future__ import annotations

from typing import Any

import pytest
from trace_core.chainsync import deletion, errors, jobs
from trace_core.chainsync import spec as spec_mod
from trace_core.datasets import registry
from trace_core.dispatcher import tasks

from tests.integration.datasets import fixtures as dataset_fixtures
from tests.integration.ingest.helpers import run_attempt

conn, make_s3_store, s3_client = dataset_fixtures.conn, dataset_fixtures.make_s3_store, dataset_fixtures.s3_client

SPEC = """
name: {name}
chain_id: 10143
rpc: {{urls: ["{url}"]}}
datasets: [blocks, logs]
mode: {{type: fixed_target, from_block: 0, to_block: 40}}
chunk_size: 20
"""
JOB_TABLES = ("state.sync_ranges", "state.sync_streams", "state.tasks")


def _sync(conn: Any, spec: spec_mod.ChainSyncSpec, settings: Any) -> jobs.ApplyResult:
    """Apply ``spec`` and run every range task it plans, as a worker would."""
    applied = jobs.apply(conn, spec)
    for _ in range(10):
        leases = tasks.claim_next(conn, worker_id="test", operators=["cryo_ingest"], limit=10)
        if not leases:
            break
        for lease in leases:
            assert run_attempt(conn, lease, settings).status == "completed"
    assert jobs.find(conn, spec.name)["status"] == "completed"
    return applied


def _left_over(conn: Any, job_id: Any) -> dict[str, int]:
    counts = {table: conn.execute(f"SELECT count(*) AS n FROM {table} WHERE job_id = %s",
                                  (job_id,)).fetchone()["n"] for table in (*JOB_TABLES, "state.jobs")}
    counts["state.task_attempts"] = conn.execute(
        "SELECT count(*) AS n FROM state.task_attempts a LEFT JOIN state.tasks t USING (task_id) "
        "WHERE t.task_id IS NULL").fetchone()["n"]
    counts["state.outbox"] = conn.execute(
        "SELECT count(*) AS n FROM state.outbox o LEFT JOIN state.tasks t ON t.task_id::text = o.payload ->> 'task_id' "
        "WHERE t.task_id IS NULL").fetchone()["n"]
    return {table: n for table, n in counts.items() if n}


@pytest.fixture
def synced(conn, seeded_chain, make_s3_store, make_settings, moto_url):
    store = make_s3_store()
    settings = make_settings(aws_endpoint_url=moto_url, datasets_bucket=store.bucket)

    def make(name: str) -> tuple[spec_mod.ChainSyncSpec, jobs.ApplyResult]:
        spec = spec_mod.parse(SPEC.format(name=name, url=seeded_chain.url), environ={})
        return spec, _sync(conn, spec, settings)

    make.store, make.settings = store, settings  # type: ignore[attr-defined]
    return make


def test_deleting_keeps_the_versions_and_a_reapplied_job_adopts_them(conn, synced):
    # GIVEN a job synced to its target: 2 ranges x 2 datasets committed and visible
    spec, applied = synced("del-keep")
    visible = {r["dataset_version"] for r in jobs.visible_versions(conn, applied.job_id)}
    assert len(visible) == 4
    # WHEN it is deleted without --drop-data
    result = deletion.delete(conn, "del-keep", drop_data=False)
    # THEN nothing of the job is left: no job, cursor, ledger, task, attempt or wake-up row
    assert result.prefixes == ()
    assert _left_over(conn, applied.job_id) == {}
    with pytest.raises(errors.JobNotFoundError):
        jobs.find(conn, "del-keep")
    # AND its versions are still committed, with their objects, but no query is granted them
    for dataset in ("blocks", "logs"):
        kept = registry.list_committed(conn, f"del_keep/{dataset}")
        assert {v.dataset_version for v in kept} <= visible and len(kept) == 2
        assert all(v.created_by_task is None for v in kept)
        assert all(list(synced.store.list(v.storage_prefix)) for v in kept)
    assert not visible & {r["dataset_version"] for r in jobs.visible_versions(conn)}
    # WHEN the same spec is applied and synced again
    again = _sync(conn, spec, synced.settings)
    # THEN the new job sees the very same versions, stored once
    assert {r["dataset_version"] for r in jobs.visible_versions(conn, again.job_id)} == visible
    assert len(registry.list_committed(conn, "del_keep/blocks")) == 2


def test_deleting_with_drop_data_removes_versions_datasets_and_objects(conn, synced):
    # GIVEN a synced job
    _, applied = synced("del-drop")
    prefixes = [v.storage_prefix for d in ("blocks", "logs") for v in registry.list_committed(conn, f"del_drop/{d}")]
    # WHEN it is deleted with --drop-data and its objects are dropped
    result = deletion.delete(conn, "del-drop", drop_data=True)
    deleted, failed = deletion.drop_objects(synced.store, result.prefixes)
    # THEN its rows, its versions, its datasets and their objects are gone
    assert _left_over(conn, applied.job_id) == {}
    assert sorted(result.prefixes) == sorted(prefixes) and failed == [] and deleted > 0
    assert sorted(result.datasets_removed) == ["del_drop/blocks", "del_drop/logs"]
    assert conn.execute("SELECT count(*) AS n FROM state.datasets WHERE key LIKE 'del_drop/%'").fetchone()["n"] == 0
    assert all(not list(synced.store.list(p)) for p in prefixes)


def test_a_job_with_tasks_in_flight_is_not_deleted(conn, seeded_chain):
    # GIVEN an applied job whose range tasks are queued
    spec = spec_mod.parse(SPEC.format(name="del-busy", url=seeded_chain.url), environ={})
    applied = jobs.apply(conn, spec)
    # WHEN deleting it while active THEN it is refused, with pausing as the fix, and nothing changes
    with pytest.raises(errors.JobInFlightError) as refused:
        deletion.delete(conn, "del-busy", drop_data=True)
    assert "chain-sync pause del-busy" in refused.value.details["fix"]
    # WHEN paused, it is still refused while the queued tasks have not run
    jobs.set_paused(conn, "del-busy", True)
    with pytest.raises(errors.JobInFlightError) as refused:
        deletion.delete(conn, "del-busy", drop_data=False)
    assert "wait until they finish" in refused.value.details["fix"]
    assert conn.execute("SELECT count(*) AS n FROM state.tasks WHERE job_id = %s AND status = 'queued'",
                        (applied.job_id,)).fetchone()["n"] == 2
    assert jobs.find(conn, "del-busy")["status"] == "paused"
