"""Faults and races the dispatcher must survive, each named after the peer bug it guards against.

All against real Postgres, with separate connections per actor.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from trace_core.dispatcher import errors, models, outbox, reaper, tasks

from tests.integration.dispatcher import conftest as helpers


def _create(conn, **fields) -> models.Task:
    return tasks.create(conn, models.CreateTask(operator="noop", **fields))


def _race(n: int, action: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``action(i)`` in ``n`` threads released together; collect results and errors."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            value = action(i)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted on
            with lock:
                failures.append(exc)
            return
        with lock:
            results.append(value)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, failures


def test_duplicate_wake_ups_never_run_two_attempts_at_once(conn, connect):
    """Duplicate wake-ups (SQS at-least-once, a re-drained outbox row) must not cause concurrent execution."""
    # GIVEN one queued task and 8 workers, each woken for it, each on its own connection
    task = _create(conn)
    conns = [connect() for _ in range(8)]
    # WHEN they all claim it at once
    leases, failures = _race(8, lambda i: tasks.claim(conns[i], task.task_id, worker_id=f"w{i}"))
    # THEN exactly one gets a lease; the other seven are told it is already leased by attempt 1
    assert len(leases) == 1 and leases[0].attempt == 1
    assert len(failures) == 7
    assert all(isinstance(f, errors.NotClaimableError) and f.current_attempt == 1 for f in failures)
    live = conn.execute("SELECT count(*) AS n FROM state.task_attempts WHERE finished_at IS NULL").fetchone()
    assert live["n"] == 1


def test_reaped_worker_cannot_complete_the_next_attempt(conn):
    """River, pg-boss and graphile-worker only check that the job is still running, so a worker whose
    lease was reaped can complete the *next* attempt. Here attempt 1's late completion is refused."""
    # GIVEN attempt 1 whose worker stalled, was reaped, and attempt 2 now running
    task = _create(conn, backoff_base_ms=0)
    first = tasks.claim(conn, task.task_id, worker_id="stalled")
    helpers.advance(conn, 31)
    assert reaper.reap(conn) == 1
    second = tasks.claim(conn, task.task_id, worker_id="fresh")
    assert second.attempt == 2
    # WHEN the stalled worker wakes up and completes attempt 1
    with pytest.raises(errors.StaleAttemptError) as info:
        tasks.complete(conn, task.task_id, attempt=1, lease_token=first.lease_token,
                       result=models.Success(outputs={"from": "stalled"}))
    # THEN it is told attempt 2 is current, and nothing changed
    assert info.value.current_attempt == 2
    with pytest.raises(errors.StaleAttemptError):  # nor can it borrow the new attempt number
        tasks.complete(conn, task.task_id, attempt=2, lease_token=first.lease_token, result=models.Success())
    with pytest.raises(errors.StaleAttemptError):
        tasks.heartbeat(conn, task.task_id, attempt=1, lease_token=first.lease_token)
    assert tasks.get(conn, task.task_id).status == "running"
    # AND attempt 2 completes once
    done = tasks.complete(conn, task.task_id, attempt=2, lease_token=second.lease_token,
                          result=models.Success(outputs={"from": "fresh"}))
    assert (done.status, done.outputs) == ("completed", {"from": "fresh"})
    outcomes = [a["outcome"] for a in tasks.attempts(conn, task.task_id)]
    assert outcomes == ["expired", "succeeded"]


def test_completion_needs_the_lease_token_not_just_the_task_id(conn):
    """PgQueuer, Oban and Que complete a job by its id alone; here the attempt's lease token is required."""
    task = _create(conn)
    lease = tasks.claim(conn, task.task_id, worker_id="w")
    with pytest.raises(errors.StaleAttemptError) as info:
        tasks.complete(conn, task.task_id, attempt=1, lease_token=uuid.uuid4(), result=models.Success())
    assert info.value.current_attempt == 1
    assert tasks.get(conn, task.task_id).status == "running"
    assert tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                          result=models.Success()).status == "completed"


def test_success_and_failure_racing_end_in_exactly_one_state(conn, connect):
    """Solid Queue #589: a job ended both finished and failed. Concurrent success and failure reports
    of one attempt must leave exactly one outcome."""
    for _ in range(5):
        # GIVEN a running attempt WHEN its success and its failure are reported at once
        task = _create(conn, max_attempts=1)
        lease = tasks.claim(conn, task.task_id, worker_id="w")
        conns = [connect(), connect()]
        results = [models.Success(outputs={"ok": True}), models.Failure(error="x", retryable=False)]
        def report(i: int, conns=conns, task=task, lease=lease, results=results) -> models.Task:
            return tasks.complete(conns[i], task.task_id, attempt=1, lease_token=lease.lease_token,
                                  result=results[i])

        done, failures = _race(2, report)
        # THEN one wins, the other is refused as stale, and the rows agree on one outcome
        assert len(done) == 1 and len(failures) == 1
        assert isinstance(failures[0], errors.StaleAttemptError)
        final = tasks.get(conn, task.task_id)
        [attempt] = tasks.attempts(conn, task.task_id)
        assert final.status == done[0].status
        assert (final.status, attempt["outcome"]) in {("completed", "succeeded"), ("failed", "failed")}


def test_the_fencing_token_only_increases_whoever_writes(conn):
    """Peers let an admin retry or snooze lower the attempt counter, reopening old attempts' fences.
    Here the counter is guarded in SQL, and a task given back still moves to a higher attempt."""
    task = _create(conn)
    lease = tasks.claim(conn, task.task_id, worker_id="w")
    tasks.abandon(conn, task.task_id, attempt=1, lease_token=lease.lease_token, reason="snooze")
    # WHEN anything tries to lower the counter THEN Postgres refuses
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE state.tasks SET attempt = 0 WHERE task_id = %s", (task.task_id,))
    conn.rollback()
    # AND the next claim is a new, higher attempt whose fence excludes the old token
    again = tasks.claim(conn, task.task_id, worker_id="w")
    assert again.attempt == 2
    with pytest.raises(errors.StaleAttemptError):
        tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token, result=models.Success())


def test_completed_tasks_never_change(conn):
    """A completed task is final: repeat completions change nothing, and SQL refuses edits."""
    task = _create(conn)
    lease = tasks.claim(conn, task.task_id, worker_id="w")
    done = tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                          result=models.Success(outputs={"v": 1}))
    # WHEN the same completion is repeated (a retried HTTP request) THEN the task comes back unchanged
    again = tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                           result=models.Success(outputs={"v": 1}))
    assert again == done
    # WHEN anything else arrives THEN 409-class errors, still unchanged
    for attempt, token, result in [
        (1, lease.lease_token, models.Success(outputs={"v": 2})),
        (1, lease.lease_token, models.Failure(error="late")),
        (1, uuid.uuid4(), models.Success(outputs={"v": 1})),
        (2, lease.lease_token, models.Success(outputs={"v": 1})),
    ]:
        with pytest.raises(errors.StaleAttemptError) as info:
            tasks.complete(conn, task.task_id, attempt=attempt, lease_token=token, result=result)
        assert info.value.current_attempt == 1
    with pytest.raises(errors.NotClaimableError):
        tasks.claim(conn, task.task_id, worker_id="w")
    assert tasks.get(conn, task.task_id) == done
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE state.tasks SET outputs = '{}' WHERE task_id = %s", (task.task_id,))
    conn.rollback()


def test_heartbeats_keep_a_long_task_from_running_twice(conn):
    """Long jobs run twice in peers whose heartbeats are too coarse (or absent) for the lease.
    Here each heartbeat renews the lease from now, so the reaper leaves a live worker alone."""
    task = _create(conn)
    lease = tasks.claim(conn, task.task_id, worker_id="w", lease_seconds=30)
    # GIVEN a task running for 10 minutes with a heartbeat every 20 s
    for _ in range(30):
        helpers.advance(conn, 20)
        tasks.heartbeat(conn, task.task_id, attempt=1, lease_token=lease.lease_token, lease_seconds=30)
        # THEN the reaper never takes it and nobody else can claim it
        assert reaper.reap(conn) == 0
    with pytest.raises(errors.NotClaimableError):
        tasks.claim(conn, task.task_id, worker_id="other")
    # AND once heartbeats stop, the lease runs out: a late heartbeat is refused, so the worker stops
    helpers.advance(conn, 31)
    with pytest.raises(errors.LeaseExpiredError):
        tasks.heartbeat(conn, task.task_id, attempt=1, lease_token=lease.lease_token)
    with pytest.raises(errors.LeaseExpiredError):
        tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token, result=models.Success())
    assert reaper.reap(conn) == 1
    with pytest.raises(errors.LeaseExpiredError):  # still "lost lease" after the reap
        tasks.heartbeat(conn, task.task_id, attempt=1, lease_token=lease.lease_token)


def test_a_crashed_workers_task_is_never_stuck(conn, driver):
    """Jobs stuck forever in 'running' after a worker crash (a recurring report in peer trackers).
    Here every expired lease is retried with a wake-up, and ends dead after max attempts."""
    task = _create(conn, max_attempts=2, backoff_base_ms=1000)
    outbox.drain(conn, driver)
    # GIVEN attempt 1's worker crashed (no heartbeat, no completion)
    tasks.claim(conn, task.task_id, worker_id="crashed")
    helpers.advance(conn, 31)
    # WHEN the reaper runs THEN the task is queued again with backoff and a wake-up published once due
    assert reaper.reap(conn) == 1
    assert tasks.get(conn, task.task_id).status == "queued"
    assert outbox.drain(conn, driver) == 0
    helpers.advance(conn, 1)
    assert outbox.drain(conn, driver) == 1
    assert driver.bodies()[-1] == {"task_id": str(task.task_id), "attempt": 1}
    # WHEN attempt 2 crashes too THEN the task is dead, recorded, and no further wake-up is sent
    tasks.claim(conn, task.task_id, worker_id="crashed-again")
    helpers.advance(conn, 31)
    assert reaper.reap(conn) == 1
    final = tasks.get(conn, task.task_id)
    assert (final.status, final.attempt) == ("dead", 2)
    assert "expired" in (final.last_error or "")
    assert conn.execute("SELECT attempts FROM state.dead_tasks").fetchone() == {"attempts": 2}
    helpers.advance(conn, 3600)
    assert outbox.drain(conn, driver) == 0


def test_on_success_commits_only_with_the_owning_attempt(conn):
    """Dataset commits ride on completion: written for the owning attempt, rolled back otherwise."""
    task = _create(conn)
    lease = tasks.claim(conn, task.task_id, worker_id="w")
    seen: list[tuple[int, dict]] = []

    def commit(c, t: models.Task, outputs: dict) -> None:
        seen.append((t.attempt, outputs))
        c.execute("INSERT INTO state.jobs (name, kind, spec, spec_hash) VALUES (%s, 'x', '{}', 'h')",
                  (f"from-{t.attempt}",))

    # WHEN a stale completion arrives THEN on_success never runs
    with pytest.raises(errors.StaleAttemptError):
        tasks.complete(conn, task.task_id, attempt=1, lease_token=uuid.uuid4(), result=models.Success(),
                       on_success=commit)
    assert seen == []

    # WHEN on_success fails THEN the completion rolls back with it
    def broken(c, t, outputs) -> None:
        commit(c, t, outputs)
        raise RuntimeError("storage down")

    with pytest.raises(RuntimeError):
        tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                       result=models.Success(outputs={"k": 1}), on_success=broken)
    assert tasks.get(conn, task.task_id).status == "running"
    assert conn.execute("SELECT count(*) AS n FROM state.jobs").fetchone()["n"] == 0
    # WHEN the owning attempt completes THEN its write and the completion commit together
    tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                   result=models.Success(outputs={"k": 1}), on_success=commit)
    assert seen[-1] == (1, {"k": 1})
    assert conn.execute("SELECT name FROM state.jobs").fetchall() == [{"name": "from-1"}]


def test_two_reapers_and_two_drainers_at_once_lose_nothing_and_double_nothing(conn, connect, driver):
    """Concurrent background loops (two Lambda invocations overlapping): each expired attempt is
    reaped exactly once, each outbox row is published at least once and marked once."""
    # GIVEN 60 leased tasks whose leases all expired, and 60 undrained creation wake-ups
    tasks.create_many(conn, [models.CreateTask(operator="noop", backoff_base_ms=0) for _ in range(60)])
    assert len(tasks.claim_next(conn, worker_id="w", limit=60)) == 60
    helpers.advance(conn, 31)
    reapers_left = [2]
    reaped_done = threading.Event()
    reaped: list[int] = []
    lock = threading.Lock()
    conns = [connect() for _ in range(4)]

    def run(i: int) -> None:
        if i < 2:  # reapers: until nothing is left to reap
            while (n := reaper.reap(conns[i], limit=7)) > 0:
                reaped.append(n)
            with lock:
                reapers_left[0] -= 1
                if reapers_left[0] == 0:
                    reaped_done.set()
        else:  # drainers: until the reapers are done and nothing is left to drain
            while True:
                finished = reaped_done.is_set()
                if outbox.drain(conns[i], driver, batch_size=7) == 0 and finished:
                    return

    # WHEN two reapers and two drainers run at once
    _, failures = _race(4, run)
    assert failures == []
    # THEN every expiry was reaped once: one 'expired' attempt and one retry wake-up per task
    assert sum(reaped) == 60
    counts = conn.execute(
        "SELECT count(*) FILTER (WHERE outcome = 'expired') AS expired, count(*) AS attempts "
        "FROM state.task_attempts").fetchone()
    assert counts == {"expired": 60, "attempts": 60}
    per_task = conn.execute(
        "SELECT payload->>'task_id' AS t, array_agg((payload->>'attempt')::int ORDER BY outbox_id) AS a "
        "FROM state.outbox GROUP BY 1").fetchall()
    assert len(per_task) == 60 and all(r["a"] == [0, 1] for r in per_task)
    # AND every row was published and marked exactly once
    marks = conn.execute("SELECT publish_attempts, published_at IS NOT NULL AS done FROM state.outbox").fetchall()
    assert all(m == {"publish_attempts": 1, "done": True} for m in marks)
    published = {(b["task_id"], b["attempt"]) for b in driver.bodies()}
    assert published == {(r["t"], a) for r in per_task for a in (0, 1)}
    # AND attempt numbers go on increasing
    assert {lease.attempt for lease in tasks.claim_next(conn, worker_id="w", limit=100)} == {2}
