"""The core's operations against real Postgres: create, claim, heartbeat, complete, retry, dead, abandon."""

from __future__ import annotations

import uuid

import pytest
from trace_core.dispatcher import errors, models, outbox, tasks

from tests.integration.dispatcher import conftest as helpers


def _create(conn, **fields) -> models.Task:
    return tasks.create(conn, models.CreateTask(operator="noop", **fields))


def _outbox(conn) -> list[dict]:
    return conn.execute(
        "SELECT queue, payload, published_at, not_before FROM state.outbox ORDER BY outbox_id"
    ).fetchall()


def test_create_writes_a_queued_task_and_its_wake_up(conn):
    # GIVEN nothing WHEN a task is created
    task = _create(conn, payload={"n": 1}, queue="q-a")
    # THEN it is queued at attempt 0 with one pending outbox row pointing at it
    assert (task.status, task.attempt, task.payload, task.queue) == ("queued", 0, {"n": 1}, "q-a")
    rows = _outbox(conn)
    assert [(r["queue"], r["payload"], r["published_at"]) for r in rows] == [
        ("q-a", {"task_id": str(task.task_id), "attempt": 0}, None)
    ]


def test_create_is_idempotent_on_the_key(conn):
    # GIVEN a task created with a key
    first = _create(conn, payload={"n": 1}, idempotency_key="k1")
    # WHEN the same request is repeated THEN the same task comes back and no second wake-up is written
    again = _create(conn, payload={"n": 1}, idempotency_key="k1")
    assert again == first
    assert len(_outbox(conn)) == 1
    # WHEN the key is reused for a different payload THEN it is refused naming the field
    with pytest.raises(errors.InvalidTaskError) as info:
        _create(conn, payload={"n": 2}, idempotency_key="k1")
    assert info.value.field == "idempotency_key"
    assert info.value.details["differs"] == "payload"


def test_create_many_keeps_order_and_dedupes_keys_within_the_batch(conn):
    # GIVEN a batch with a repeated key WHEN it is created
    made = tasks.create_many(conn, [
        models.CreateTask(operator="noop", payload={"i": 0}, idempotency_key="dup"),
        models.CreateTask(operator="noop", payload={"i": 1}),
        models.CreateTask(operator="noop", payload={"i": 0}, idempotency_key="dup"),
    ])
    # THEN results follow the request order and the repeat is the same task
    assert [t.payload["i"] for t in made] == [0, 1, 0]
    assert made[0].task_id == made[2].task_id
    assert len(_outbox(conn)) == 2
    # AND each returned task is exactly the stored row (the insert returns only what the database set)
    assert made == [tasks.get(conn, t.task_id) for t in made]


def test_create_with_an_unknown_job_names_the_field(conn):
    with pytest.raises(errors.InvalidTaskError) as info:
        _create(conn, job_id=uuid.uuid4())
    assert info.value.field == "job_id"


def test_bad_create_input_names_the_field():
    with pytest.raises(errors.InvalidTaskError) as info:
        models.parse(models.CreateTask, {"operator": "noop", "max_attempts": 0})
    assert info.value.field == "max_attempts"
    with pytest.raises(errors.InvalidTaskError) as info:
        models.parse(models.CreateTask, {"payload": {}})
    assert info.value.field == "operator"


def test_claim_heartbeat_complete_happy_path(conn):
    # GIVEN a queued task
    task = _create(conn)
    # WHEN a worker claims it
    lease = tasks.claim(conn, task.task_id, worker_id="w1", lease_seconds=30)
    # THEN it runs attempt 1 under a lease
    assert (lease.attempt, lease.task.status) == (1, "running")
    # WHEN the worker heartbeats THEN the lease moves forward
    helpers.advance(conn, 20)
    beat = tasks.heartbeat(conn, task.task_id, attempt=1, lease_token=lease.lease_token, lease_seconds=30)
    left = conn.execute("SELECT %s - now() AS left", (beat.lease_expires_at,)).fetchone()["left"]
    assert 29 <= left.total_seconds() <= 30
    assert (beat.attempt, beat.lease_token) == (1, lease.lease_token)
    # WHEN it completes THEN the task is completed with its outputs and the attempt succeeded
    done = tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                          result=models.Success(outputs={"rows": 3}))
    assert (done.status, done.outputs, done.lease_expires_at) == ("completed", {"rows": 3}, None)
    assert done.finished_at is not None
    [attempt] = tasks.attempts(conn, task.task_id)
    assert (attempt["outcome"], attempt["worker_id"]) == ("succeeded", "w1")


def test_claim_refuses_what_is_not_claimable(conn):
    task = _create(conn)
    tasks.claim(conn, task.task_id, worker_id="w1")
    # WHEN a second claim arrives for a running task THEN NotClaimable with status and current attempt
    with pytest.raises(errors.NotClaimableError) as info:
        tasks.claim(conn, task.task_id, worker_id="w2")
    assert (info.value.status, info.value.current_attempt) == ("running", 1)
    with pytest.raises(errors.TaskNotFoundError):
        tasks.claim(conn, uuid.uuid4(), worker_id="w2")
    with pytest.raises(errors.InvalidTaskError) as bad:
        tasks.claim(conn, task.task_id, worker_id="w2", lease_seconds=0)
    assert bad.value.field == "lease_seconds"


def test_retryable_failure_requeues_with_backoff_and_a_due_wake_up(conn, driver):
    # GIVEN a task with 1 s base backoff, claimed
    task = _create(conn, backoff_base_ms=1000, max_attempts=3)
    lease = tasks.claim(conn, task.task_id, worker_id="w1")
    outbox.drain(conn, driver)
    # WHEN attempt 1 fails retryably
    after = tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                           result=models.Failure(error="boom"))
    # THEN it is queued again, not due for 1 s, with a wake-up published only once due
    assert (after.status, after.attempt, after.last_error) == ("queued", 1, "boom")
    with pytest.raises(errors.NotClaimableError) as early:
        tasks.claim(conn, task.task_id, worker_id="w1")
    assert early.value.status == "queued"
    assert outbox.drain(conn, driver) == 0
    helpers.advance(conn, 1.5)
    assert outbox.drain(conn, driver) == 1
    assert driver.bodies()[-1] == {"task_id": str(task.task_id), "attempt": 1}
    # AND the next claim is attempt 2; its failure backs off twice as long
    lease2 = tasks.claim(conn, task.task_id, worker_id="w1")
    assert lease2.attempt == 2
    after2 = tasks.complete(conn, task.task_id, attempt=2, lease_token=lease2.lease_token,
                            result=models.Failure(error="boom"))
    gap = conn.execute("SELECT not_before - now() AS gap FROM state.tasks WHERE task_id = %s",
                       (task.task_id,)).fetchone()["gap"]
    assert 1.9 <= gap.total_seconds() <= 2.1
    assert after2.status == "queued"


def test_last_attempt_failing_goes_dead_with_a_dead_letter_row(conn):
    # GIVEN a task with 2 attempts and no backoff
    task = _create(conn, max_attempts=2, backoff_base_ms=0)
    for attempt in (1, 2):
        lease = tasks.claim(conn, task.task_id, worker_id="w")
        final = tasks.complete(conn, task.task_id, attempt=attempt, lease_token=lease.lease_token,
                               result=models.Failure(error=f"e{attempt}"))
    # THEN after the second failure it is dead, recorded in dead_tasks, with no new wake-up
    assert (final.status, final.attempt, final.last_error) == ("dead", 2, "e2")
    dead = conn.execute("SELECT attempts, last_error FROM state.dead_tasks WHERE task_id = %s",
                        (task.task_id,)).fetchone()
    assert dead == {"attempts": 2, "last_error": "e2"}
    assert [r["payload"]["attempt"] for r in _outbox(conn)] == [0, 1]
    with pytest.raises(errors.NotClaimableError):
        tasks.claim(conn, task.task_id, worker_id="w")


def test_non_retryable_failure_fails_at_once(conn):
    task = _create(conn, max_attempts=5)
    lease = tasks.claim(conn, task.task_id, worker_id="w")
    final = tasks.complete(conn, task.task_id, attempt=1, lease_token=lease.lease_token,
                           result=models.Failure(error="bad input", retryable=False))
    assert (final.status, final.attempt) == ("failed", 1)
    assert conn.execute("SELECT count(*) AS n FROM state.dead_tasks").fetchone()["n"] == 0


def test_abandon_retries_at_once_with_a_higher_attempt(conn):
    # GIVEN a claimed task WHEN the worker abandons it on shutdown
    task = _create(conn, backoff_base_ms=60_000)
    lease = tasks.claim(conn, task.task_id, worker_id="w")
    after = tasks.abandon(conn, task.task_id, attempt=1, lease_token=lease.lease_token, reason="SIGTERM")
    # THEN it is queued and due now; the next claim is attempt 2
    assert after.status == "queued"
    assert tasks.claim(conn, task.task_id, worker_id="w2").attempt == 2
    assert tasks.attempts(conn, task.task_id)[0]["outcome"] == "abandoned"


def test_claim_next_batches_and_filters_by_operator(conn):
    for i in range(3):
        _create(conn, payload={"i": i})
    tasks.create(conn, models.CreateTask(operator="other"))
    leases = tasks.claim_next(conn, worker_id="w", operators=["noop"], limit=10)
    assert sorted(lease.task.payload["i"] for lease in leases) == [0, 1, 2]
    assert all(lease.attempt == 1 for lease in leases)
    assert tasks.claim_next(conn, worker_id="w", operators=["noop"]) == []
    [other] = tasks.claim_next(conn, worker_id="w")
    assert other.task.operator == "other"


def test_complete_many_reports_each_item(conn):
    a, b = _create(conn), _create(conn)
    la = tasks.claim(conn, a.task_id, worker_id="w")
    tasks.claim(conn, b.task_id, worker_id="w")
    results = tasks.complete_many(conn, [
        models.Completion(task_id=a.task_id, attempt=1, lease_token=la.lease_token, result=models.Success()),
        models.Completion(task_id=b.task_id, attempt=1, lease_token=uuid.uuid4(), result=models.Success()),
    ])
    assert results[0] == "completed"
    assert isinstance(results[1], errors.StaleAttemptError)
    assert tasks.get(conn, b.task_id).status == "running"


def test_get_and_list(conn):
    a = _create(conn)
    b = _create(conn)
    tasks.claim(conn, b.task_id, worker_id="w")
    assert tasks.get(conn, a.task_id) == a
    assert [t.task_id for t in tasks.list_tasks(conn, status="running")] == [b.task_id]
    assert {t.task_id for t in tasks.list_tasks(conn)} == {a.task_id, b.task_id}
    with pytest.raises(errors.InvalidTaskError) as info:
        tasks.list_tasks(conn, status="sleeping")  # type: ignore[arg-type]
    assert info.value.field == "status"
    with pytest.raises(errors.TaskNotFoundError):
        tasks.get(conn, uuid.uuid4())
