"""The chain sync planner on real Postgres, with range tasks completed through the real dispatcher core."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core.chainsync import jobs, planner
from trace_core.chainsync import spec as spec_mod
from trace_core.dispatcher import errors as dispatch_errors
from trace_core.dispatcher import models, tasks

SPEC = """
name: {name}
chain_id: 10143
rpc: {{urls: ["http://127.0.0.1:1"]}}
datasets: [blocks, logs]
mode: {mode}
chunk_size: 30
max_inflight: 2
max_attempts: 1
"""
FIXED = "{type: fixed_target, from_block: 0, to_block: 100}"


def make_spec(name: str, mode: str = FIXED, **changes: str) -> spec_mod.ChainSyncSpec:
    text = SPEC.format(name=name, mode=mode)
    for old, new in changes.items():
        text = text.replace(old, new)
    return spec_mod.parse(text, environ={})


@pytest.fixture
def conn(make_database):
    with psycopg.connect(make_database(), row_factory=dict_row) as c:
        yield c


def ranges(conn, job_id, dataset="blocks") -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT r.*, t.status AS task_status FROM state.sync_ranges r LEFT JOIN state.tasks t USING (task_id) "
        "WHERE r.job_id = %s AND r.dataset = %s ORDER BY range_start, generation",
        (job_id, dataset),
    ).fetchall()


def stream(conn, job_id, dataset="blocks") -> dict[str, Any]:
    return conn.execute("SELECT * FROM state.sync_streams WHERE job_id = %s AND dataset = %s",
                        (job_id, dataset)).fetchone()


class Chain:
    """Block hashes of a pretend chain; a reorg changes the hashes from a block on."""

    def __init__(self) -> None:
        self.fork_from: int | None = None

    def block_hash(self, number: int) -> str:
        fork = "b" if self.fork_from is not None and number >= self.fork_from else "a"
        return f"0x{fork}{number:063x}"

    def safe_head(self, *, confirmations: int, use_finalized_tag: bool) -> int:
        return self.head - confirmations

    head = 0


def run_range(conn, rng: dict[str, Any], chain: Chain) -> models.Task:
    """What a worker does: claim the range's task, 'extract' it, complete it with the planner hook."""
    lease = tasks.claim(conn, rng["task_id"], worker_id="test", lease_seconds=30)
    start, end = lease.task.payload["range_start"], lease.task.payload["range_end"]
    info = {dataset: {"dataset_version": f"v-{dataset}-{start}-{end}-{lease.task.payload['sync']['generation']}",
                      "first_parent_hash": chain.block_hash(start - 1) if start else None,
                      "last_hash": chain.block_hash(end - 1)}
            for dataset in lease.task.payload["datasets"]}
    return tasks.complete(conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                          result=models.Success(outputs={"versions": info}),
                          on_success=lambda c, task, outputs: planner.on_range_committed(c, task, outputs["versions"]))


def scheduled(conn, job_id, dataset="blocks"):
    return [r for r in ranges(conn, job_id, dataset) if r["status"] == "scheduled"]


def test_apply_plans_up_to_max_inflight_and_reapply_changes_nothing(conn):
    spec = make_spec("plan-a")
    result = jobs.apply(conn, spec)
    assert result.outcome == "created"
    assert [(r["range_start"], r["range_end"]) for r in ranges(conn, result.job_id)] == [(0, 30), (30, 60)]
    assert len(ranges(conn, result.job_id, "logs")) == 2
    tasks_before = conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"]
    outbox_before = conn.execute("SELECT count(*) AS n FROM state.outbox").fetchone()["n"]
    # WHEN the same spec is applied again and the planner re-runs
    again = jobs.apply(conn, spec)
    planner.tick(conn, result.job_id)
    conn.commit()
    # THEN nothing new exists
    assert again.outcome == "unchanged" and again.job_id == result.job_id
    assert conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"] == tasks_before == 2
    assert conn.execute("SELECT count(*) AS n FROM state.outbox").fetchone()["n"] == outbox_before
    # one task per range, serving the ledger rows of both streams
    first = ranges(conn, result.job_id)[0]
    assert ranges(conn, result.job_id, "logs")[0]["task_id"] == first["task_id"]
    task = tasks.get(conn, first["task_id"])
    assert task.operator == "cryo_ingest" and task.payload["datasets"] == ["blocks", "logs"]
    assert task.payload["dataset_keys"] == {"blocks": "plan_a/blocks", "logs": "plan_a/logs"}
    # each dataset's config hash is the one it would have in a task of its own
    assert task.payload["config_hashes"] == {d: planner.config_hash(spec, d, 0) for d in ("blocks", "logs")}


def test_cursor_advances_only_over_contiguous_ranges_and_job_completes(conn):
    chain = Chain()
    job_id = jobs.apply(conn, make_spec("plan-b", **{"[blocks, logs]": "[blocks]"})).job_id
    first, second = scheduled(conn, job_id)
    # WHEN the second range commits first THEN the cursor stays and the next range is topped up
    run_range(conn, second, chain)
    assert stream(conn, job_id)["cursor"] == 0
    assert [(r["range_start"], r["range_end"]) for r in scheduled(conn, job_id)] == [(0, 30), (60, 90)]
    run_range(conn, first, chain)
    assert stream(conn, job_id)["cursor"] == 60
    while rest := scheduled(conn, job_id):
        run_range(conn, rest[0], chain)
    s = stream(conn, job_id)
    assert s["cursor"] == 100 and s["cursor_hash"] == chain.block_hash(99)
    # ranges cover [0, 100) exactly once, end-exclusive, the last one short
    spans = [(r["range_start"], r["range_end"]) for r in ranges(conn, job_id)]
    assert spans == [(0, 30), (30, 60), (60, 90), (90, 100)]
    assert (
        conn.execute("SELECT status FROM state.jobs WHERE job_id = %s", (job_id,)).fetchone()["status"] == "completed"
    )


def test_broken_hash_link_stops_the_stream_until_repaired(conn):
    chain = Chain()
    job_id = jobs.apply(
        conn, make_spec("plan-c", **{"[blocks, logs]": "[blocks]", "max_inflight: 2": "max_inflight: 1"})
    ).job_id
    run_range(conn, scheduled(conn, job_id)[0], chain)  # [0, 30) committed on fork "a"
    chain.fork_from = 25  # a reorg replaces blocks 25.. after the range committed
    run_range(conn, scheduled(conn, job_id)[0], chain)  # [30, 60) extracted on fork "b"
    s = stream(conn, job_id)
    assert s["broken_at"] == 30 and s["cursor"] == 30
    assert "hash link broken at block 30" in s["last_error"]
    _, progress = jobs.progress(conn, "plan-c")
    assert progress[0].broken_at == 30
    # the broken stream schedules nothing further until repaired
    assert planner.tick(conn, job_id).scheduled == 0
    # WHEN repair runs against the canonical chain THEN the stale range is superseded and re-extracted
    conn.commit()  # repair asks the chain: never from inside a transaction
    assert planner.repair(conn, job_id, chain) == 1
    conn.commit()
    old = [r for r in ranges(conn, job_id) if r["range_start"] == 0]
    assert [(r["generation"], r["status"]) for r in old] == [(0, "superseded"), (1, "scheduled")]
    assert stream(conn, job_id)["broken_at"] is None
    run_range(conn, old[1], chain)
    assert stream(conn, job_id)["cursor"] == 60  # [0,30) gen 1 now links to [30,60)


def test_reorg_after_last_commit_is_found_by_repair(conn):
    chain = Chain()
    job_id = jobs.apply(conn, make_spec("plan-d", **{"[blocks, logs]": "[blocks]"})).job_id
    while rest := scheduled(conn, job_id):
        run_range(conn, rest[0], chain)
    chain.fork_from = 95
    conn.commit()
    assert planner.repair(conn, job_id, chain) == 1
    assert stream(conn, job_id)["cursor"] == 90
    assert conn.execute("SELECT status FROM state.jobs WHERE job_id = %s", (job_id,)).fetchone()["status"] == "active"
    run_range(conn, scheduled(conn, job_id)[0], chain)
    assert stream(conn, job_id)["cursor"] == 100


def test_dead_range_task_is_rescheduled_so_no_gap_remains(conn):
    chain = Chain()
    job_id = jobs.apply(conn, make_spec("plan-e", **{"[blocks, logs]": "[blocks]"})).job_id
    rng = scheduled(conn, job_id)[0]
    lease = tasks.claim(conn, rng["task_id"], worker_id="w", lease_seconds=30)
    tasks.complete(conn, rng["task_id"], attempt=lease.attempt, lease_token=lease.lease_token,
                   result=models.Failure(error="rpc: connection refused"))
    conn.commit()
    assert tasks.get(conn, rng["task_id"]).status == "dead"  # max_attempts: 1
    _, progress = jobs.progress(conn, "plan-e")
    assert progress[0].failed == 1 and "connection refused" in (progress[0].last_error or "")
    # WHEN the planner ticks (the RPC is back) THEN the range gets a fresh task
    assert planner.tick(conn, job_id).rescheduled == 1
    conn.commit()
    again = scheduled(conn, job_id)[0]
    assert again["range_id"] == rng["range_id"] and again["task_id"] != rng["task_id"]
    run_range(conn, again, chain)
    assert stream(conn, job_id)["cursor"] == 30


def test_pause_stops_planning_and_resume_restarts_it(conn):
    chain = Chain()
    spec = make_spec("plan-f", **{"[blocks, logs]": "[blocks]", "max_inflight: 2": "max_inflight: 1"})
    job_id = jobs.apply(conn, spec).job_id
    assert jobs.set_paused(conn, "plan-f", True)
    run_range(conn, scheduled(conn, job_id)[0], chain)  # the running range still finishes
    assert scheduled(conn, job_id) == []  # but nothing new is planned
    assert jobs.set_paused(conn, "plan-f", False)
    assert len(scheduled(conn, job_id)) == 1


def test_follow_head_schedules_full_chunks_below_the_safe_head(conn):
    chain = Chain()
    mode = "{type: follow_head, from_block: 0, confirmations: 5, use_finalized_tag: false}"
    spec = make_spec("plan-g", mode=mode, **{"[blocks, logs]": "[blocks]", "max_inflight: 2": "max_inflight: 5"})
    chain.head = 70  # safe head 65: only [0,30) and [30,60) are full chunks
    job_id = jobs.apply(conn, spec, chain).job_id
    assert [(r["range_start"], r["range_end"]) for r in scheduled(conn, job_id)] == [(0, 30), (30, 60)]
    chain.head = 100
    assert planner.tick(conn, job_id, safe_head=95).scheduled == 1
    conn.commit()
    assert scheduled(conn, job_id)[-1]["range_end"] == 90


def test_changing_immutable_fields_is_refused(conn):
    jobs.apply(conn, make_spec("plan-h"))
    with pytest.raises(Exception) as info:
        jobs.apply(conn, make_spec("plan-h", **{"chain_id: 10143": "chain_id: 1"}))
    assert info.value.details["field"] == "chain_id"


def test_unknown_job_names_the_known_ones(conn):
    jobs.apply(conn, make_spec("plan-i"))
    with pytest.raises(Exception, match=r"no chain_sync job named 'nope'.*plan-i"):
        jobs.find(conn, "nope")


def test_stale_attempt_cannot_commit_a_range(conn):
    job_id = jobs.apply(
        conn, make_spec("plan-j", **{"[blocks, logs]": "[blocks]", "max_attempts: 1": "max_attempts: 3"})
    ).job_id
    rng = scheduled(conn, job_id)[0]
    lease = tasks.claim(conn, rng["task_id"], worker_id="w1", lease_seconds=30)
    conn.execute(
        "UPDATE state.tasks SET lease_expires_at = now() - interval '1 second' WHERE task_id = %s", (rng["task_id"],)
    )
    conn.execute(
        "UPDATE state.task_attempts SET lease_expires_at = now() - interval '1 second' WHERE task_id = %s",
        (rng["task_id"],),
    )
    conn.commit()
    with pytest.raises((dispatch_errors.LeaseExpiredError, dispatch_errors.StaleAttemptError)):
        tasks.complete(
            conn,
            rng["task_id"],
            attempt=lease.attempt,
            lease_token=lease.lease_token,
            result=models.Success(outputs={}),
            on_success=lambda c, t, o: planner.on_range_committed(c, t, {"blocks": {"dataset_version": "x"}}),
        )
    conn.rollback()
    assert scheduled(conn, job_id)[0]["status"] == "scheduled"
    assert stream(conn, job_id)["cursor"] == 0


def test_one_task_commits_every_dataset_of_its_range_and_each_cursor_advances(conn):
    chain = Chain()
    job_id = jobs.apply(conn, make_spec("plan-k", **{"[blocks, logs]": "[blocks, logs, traces]"})).job_id
    assert conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"] == 2
    run_range(conn, scheduled(conn, job_id)[0], chain)
    for dataset in ("blocks", "logs", "traces"):
        committed = [r for r in ranges(conn, job_id, dataset) if r["status"] == "committed"]
        assert [(r["range_start"], r["dataset_version"]) for r in committed] == [(0, f"v-{dataset}-0-30-0")]
        assert stream(conn, job_id, dataset)["cursor"] == 30
    # the top-up is again one task for the three streams
    latest = [scheduled(conn, job_id, d)[-1] for d in ("blocks", "logs", "traces")]
    assert {(r["range_start"], r["task_id"]) for r in latest} == {(60, latest[0]["task_id"])}
    while rest := scheduled(conn, job_id):
        run_range(conn, rest[0], chain)
    assert conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"] == 4  # [0,100) in 4 ranges
    assert (
        conn.execute("SELECT status FROM state.jobs WHERE job_id = %s", (job_id,)).fetchone()["status"] == "completed"
    )


def test_a_repair_of_one_dataset_re_extracts_that_dataset_alone(conn):
    chain = Chain()
    spec = make_spec("plan-l", **{"max_inflight: 2": "max_inflight: 1"})
    job_id = jobs.apply(conn, spec).job_id
    run_range(conn, scheduled(conn, job_id)[0], chain)  # [0, 30) of blocks and logs
    # the logs range alone no longer matches the chain (say it was extracted from a node on another fork)
    conn.execute("UPDATE state.sync_ranges SET last_hash = '0xdead' WHERE job_id = %s AND dataset = 'logs'", (job_id,))
    conn.execute("UPDATE state.sync_streams SET cursor_hash = '0xdead' WHERE job_id = %s AND dataset = 'logs'",
                 (job_id,))
    conn.commit()
    tasks_before = conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"]
    conn.commit()
    # WHEN repair runs THEN only the logs range is superseded, and its new task covers logs alone
    assert planner.repair(conn, job_id, chain) == 1
    conn.commit()
    redo = [r for r in ranges(conn, job_id, "logs") if r["generation"] == 1]
    assert [(r["range_start"], r["status"]) for r in redo] == [(0, "scheduled")]
    task = tasks.get(conn, redo[0]["task_id"])
    assert task.payload["datasets"] == ["logs"] and task.payload["range_start"] == 0
    assert task.payload["config_hashes"] == {"logs": planner.config_hash(spec, "logs", 1)}
    assert conn.execute("SELECT count(*) AS n FROM state.tasks").fetchone()["n"] == tasks_before + 1
    assert [r["status"] for r in ranges(conn, job_id, "blocks") if r["range_start"] == 0] == ["committed"]
    run_range(conn, redo[0], chain)
    assert stream(conn, job_id, "logs")["cursor"] == 30


def test_a_reorg_under_every_stream_is_re_extracted_in_one_task(conn):
    chain = Chain()
    job_id = jobs.apply(conn, make_spec("plan-n", **{"max_inflight: 2": "max_inflight: 1"})).job_id
    run_range(conn, scheduled(conn, job_id)[0], chain)
    chain.fork_from = 25
    conn.commit()
    assert planner.repair(conn, job_id, chain) == 2  # one range per stream
    conn.commit()
    redo = [r for d in ("blocks", "logs") for r in ranges(conn, job_id, d) if r["generation"] == 1]
    assert len(redo) == 2 and redo[0]["task_id"] == redo[1]["task_id"]
    assert tasks.get(conn, redo[0]["task_id"]).payload["datasets"] == ["blocks", "logs"]


def test_a_stream_behind_gets_its_own_tasks_within_the_job_budget(conn):
    chain = Chain()
    job_id = jobs.apply(conn, make_spec("plan-m", **{"[blocks, logs]": "[blocks]"})).job_id
    run_range(conn, scheduled(conn, job_id)[0], chain)
    # WHEN the job gains a dataset (a new stream starting at block 0)
    spec = make_spec("plan-m", **{"[blocks, logs]": "[blocks, logs]"})
    jobs.apply(conn, spec)
    # THEN the job's budget (max_inflight 2 range tasks) is already used by blocks [30,60) and [60,90)
    assert scheduled(conn, job_id, "logs") == []
    # WHEN a slot frees THEN it goes to the lowest range: the lagging logs stream's, in a task of its own
    run_range(conn, scheduled(conn, job_id)[0], chain)
    logs = scheduled(conn, job_id, "logs")
    assert [(r["range_start"], r["range_end"]) for r in logs] == [(0, 30)]
    assert tasks.get(conn, logs[0]["task_id"]).payload["datasets"] == ["logs"]
    assert len({r["task_id"] for d in ("blocks", "logs") for r in scheduled(conn, job_id, d)}) == 2
    while rest := sorted(scheduled(conn, job_id) + scheduled(conn, job_id, "logs"), key=lambda r: r["range_start"]):
        run_range(conn, rest[0], chain)
    # logs caught up, and from there on both streams shared one task per range
    last = [ranges(conn, job_id, d)[-1] for d in ("blocks", "logs")]
    assert last[0]["range_start"] == 90 and last[0]["task_id"] == last[1]["task_id"]
    for dataset in ("blocks", "logs"):
        assert stream(conn, job_id, dataset)["cursor"] == 100


def test_a_dead_task_of_a_dataset_removed_from_the_spec_is_not_rescheduled(conn):
    job_id = jobs.apply(conn, make_spec("plan-o")).job_id
    rng = scheduled(conn, job_id)[0]
    lease = tasks.claim(conn, rng["task_id"], worker_id="w", lease_seconds=30)
    tasks.complete(conn, rng["task_id"], attempt=lease.attempt, lease_token=lease.lease_token,
                   result=models.Failure(error="rpc: connection refused"))
    conn.commit()
    # WHEN logs leaves the spec (apply plans at once) THEN only the blocks range of the dead task gets a new task
    jobs.apply(conn, make_spec("plan-o", **{"[blocks, logs]": "[blocks]"}))
    assert planner.tick(conn, job_id).rescheduled == 0  # and planning again changes nothing
    conn.commit()
    again = scheduled(conn, job_id)[0]
    assert again["task_id"] != rng["task_id"]
    assert tasks.get(conn, again["task_id"]).payload["datasets"] == ["blocks"]
    assert scheduled(conn, job_id, "logs")[0]["task_id"] == rng["task_id"]
