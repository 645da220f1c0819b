"""The dispatcher core: create, claim, heartbeat, complete and abandon tasks.

Every function takes an open psycopg connection and runs in one transaction it
opens with ``conn.transaction()`` (a savepoint if the caller already has one;
``claim_next`` and a completion without a commit hook join the caller's
transaction instead: :func:`rows.batch_transaction`).
Each state change that needs a wake-up writes its outbox row in that same
transaction (invariant 2); the drainer publishes it later. Time is the
database's ``now()``. Rules live in :mod:`trace_core.dispatcher.lifecycle`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from trace_core.dispatcher import errors, lifecycle, models, queries, rows

OnSuccess = Callable[[psycopg.Connection[Any], models.Task, dict[str, Any]], None]
Result = models.Success | models.Failure
MAX_BATCH = 1000

# Jitter source for retry backoff; tests may replace it with a constant.
jitter: Callable[[], float] = random.random

# Fields that must match for a repeated idempotency key to return the existing task.
_IDENTITY = ("operator", "payload", "job_id", "queue", "max_attempts", "backoff_base_ms")


def create(conn: psycopg.Connection[Any], request: models.CreateTask) -> models.Task:
    """Create a queued task and its first wake-up; idempotent on ``request.idempotency_key``."""
    return create_many(conn, [request])[0]


def create_many(conn: psycopg.Connection[Any], requests: Sequence[models.CreateTask]) -> list[models.Task]:
    """Create several tasks in one statement (in order). A repeated key returns its existing task."""
    rows.check_int("requests", len(requests), 1, MAX_BATCH)
    ids = [uuid4() for _ in requests]
    wanted: list[dict[str, Any]] = [
        {
            "ord": i,
            "task_id": str(ids[i]),
            "job_id": str(r.job_id) if r.job_id else None,
            "operator": r.operator,
            "payload": r.payload,
            "idempotency_key": r.idempotency_key,
            "queue": r.queue,
            "max_attempts": r.max_attempts,
            "backoff_base_ms": r.backoff_base_ms,
        }
        for i, r in enumerate(requests)
    ]
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        try:
            created = cur.execute(queries.get("create_tasks"), {"tasks": Jsonb(wanted)}).fetchall()
        except psycopg.errors.ForeignKeyViolation as exc:
            raise errors.InvalidTaskError(
                "job_id does not name an existing job", field="job_id", expected="the id of an existing job"
            ) from exc
        # The statement returns only what the database set; the rest is the request's (no payload
        # round trip: at 10,000 tasks the JSON decoding cost more than the insert).
        index = {task_id: i for i, task_id in enumerate(ids)}
        by_id = {row["task_id"]: _created(requests[index[row["task_id"]]], row) for row in created}
        if len(by_id) == len(requests):
            return [by_id[task_id] for task_id in ids]
        keys = [r.idempotency_key for r in requests if r.idempotency_key]
        existing = {
            row["idempotency_key"]: models.Task.from_row(row)
            for row in cur.execute(queries.get("tasks_by_idempotency_key"), {"keys": keys}).fetchall()
        }
        return [
            by_id.get(task_id) or _same_task(request, existing.get(request.idempotency_key or ""))
            for task_id, request in zip(ids, requests)
        ]


def _created(request: models.CreateTask, row: rows.Row) -> models.Task:
    return models.Task.model_validate({**dict(request), **row})  # the request's fields + what the database set


def _same_task(request: models.CreateTask, task: models.Task | None) -> models.Task:
    if task is None:  # the conflicting insert was rolled back meanwhile: the caller may retry
        raise errors.InvalidTaskError(
            "idempotency key is being used by a concurrent request; retry",
            field="idempotency_key",
            expected="a key not in use by an uncommitted request",
        )
    for name in _IDENTITY:
        if getattr(request, name) != getattr(task, name):
            raise errors.InvalidTaskError(
                f"idempotency key {request.idempotency_key!r} already names task {task.task_id}, "
                f"which has a different {name}",
                field="idempotency_key",
                expected=f"a new key, or the same request as task {task.task_id}",
                differs=name,
                task_id=str(task.task_id),
            )
    return task


def _lease(row: rows.Row) -> models.Lease:
    return models.Lease(
        task=models.Task.from_row(row),
        attempt=row["attempt"],
        lease_token=row["lease_token"],
        lease_expires_at=row["lease_expires_at"],
    )


def claim(
    conn: psycopg.Connection[Any], task_id: UUID, *, worker_id: str, lease_seconds: int = 30
) -> models.Lease:
    """Lease a queued, due task: a new attempt number (the fencing token) and a fresh lease token.

    Raises NotClaimableError if the task is leased, not yet due, or finished; never two live leases.
    """
    task_id = rows.check_uuid("task_id", task_id)
    params = {
        "task_id": task_id,
        "worker_id": rows.check_worker_id(worker_id),
        "lease_seconds": rows.check_lease_seconds(lease_seconds),
    }
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(queries.get("claim"), params).fetchone()
        if row is not None:
            return _lease(row)
        current = cur.execute(queries.get("get_task"), {"task_id": task_id}).fetchone()
        if current is None:
            raise errors.TaskNotFoundError(task_id)
        raise lifecycle.not_claimable(models.Task.from_row(current), current["db_now"])


def claim_next(
    conn: psycopg.Connection[Any],
    *,
    worker_id: str,
    operators: Sequence[str] | None = None,
    queue: str | None = None,
    lease_seconds: int = 30,
    limit: int = 1,
) -> list[models.Lease]:
    """Lease up to ``limit`` due queued tasks (oldest due first), skipping rows others hold."""
    params = {
        "worker_id": rows.check_worker_id(worker_id),
        "operators": list(operators) if operators is not None else None,
        "queue": queue,
        "lease_seconds": rows.check_lease_seconds(lease_seconds),
        "limit": rows.check_int("limit", limit, 1, MAX_BATCH),
    }
    with rows.batch_transaction(conn), conn.cursor(row_factory=dict_row) as cur:
        # Read the backlog in index order and stop at ``limit``. Without statistics (a new
        # database, or before autovacuum's first analyze) the planner expects ~1 row and picks a
        # bitmap scan, which reads and sorts the whole backlog on every claim (docs/decisions/0304).
        # SET LOCAL: it holds for the rest of this transaction, which is the claim's own for the
        # API and the worker's claim (plus the acks of the wake-ups it spent) for the worker.
        cur.execute("SET LOCAL enable_bitmapscan = off")
        return [_lease(row) for row in cur.execute(queries.get("claim_next"), params).fetchall()]


def heartbeat(
    conn: psycopg.Connection[Any], task_id: UUID, *, attempt: int, lease_token: UUID, lease_seconds: int = 30
) -> models.Lease:
    """Set the live attempt's lease to expire ``lease_seconds`` from now.

    Raises StaleAttemptError for another attempt or token, LeaseExpiredError once the lease ran out.
    """
    task_id = rows.check_uuid("task_id", task_id)
    lease_token = rows.check_uuid("lease_token", lease_token)
    params = {
        "task_id": task_id,
        "attempt": rows.check_int("attempt", attempt, 1, 100),
        "lease_token": lease_token,
        "lease_seconds": rows.check_lease_seconds(lease_seconds),
    }
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(queries.get("heartbeat"), params).fetchone()
        if row is not None:
            return _lease(row)
        snap = rows.lock(cur, [task_id]).get(task_id)
        if snap is None:
            raise errors.TaskNotFoundError(task_id)
        lifecycle.fence(snap, attempt, lease_token)
        # The fence passed on re-read, so the row changed between the two statements: treat as lost.
        raise errors.StaleAttemptError(
            f"lease of attempt {attempt} changed concurrently", task_id=task_id, current_attempt=snap.task.attempt
        )


def complete(
    conn: psycopg.Connection[Any],
    task_id: UUID,
    *,
    attempt: int,
    lease_token: UUID,
    result: Result,
    on_success: OnSuccess | None = None,
) -> models.Task:
    """Finish the live attempt (fenced). Success -> completed; Failure -> retry, failed or dead.

    ``on_success(conn, task, outputs)`` runs in the same transaction after the fence
    passed, so what it writes (a dataset commit) is visible only if the owning
    attempt completes. A repeat of an applied completion returns the task unchanged.
    """
    item = models.Completion(task_id=task_id, attempt=attempt, lease_token=lease_token, result=result)
    outcome = _complete(conn, [item], on_success=on_success, tasks_back=True)[0]
    if isinstance(outcome, errors.DispatcherError):
        raise outcome
    return outcome  # type: ignore[return-value]


def complete_many(
    conn: psycopg.Connection[Any], completions: Sequence[models.Completion]
) -> list[models.Status | errors.DispatcherError]:
    """Complete several attempts in one transaction; per item, the task's status afterwards or the
    error that fenced it off (the worker's batch path: it builds no task objects it would throw away)."""
    return _complete(conn, completions, on_success=None, tasks_back=False)  # type: ignore[return-value]


_SEQSCAN_OFF = "SELECT current_setting('enable_seqscan') AS was, set_config('enable_seqscan', 'off', true)"
_SEQSCAN_BACK = "SELECT set_config('enable_seqscan', %(value)s, true)"


def _complete(
    conn: psycopg.Connection[Any], completions: Sequence[models.Completion], *, on_success: OnSuccess | None,
    tasks_back: bool,
) -> list[models.Task | models.Status | errors.DispatcherError]:
    rows.check_int("completions", len(completions), 1, MAX_BATCH)
    ids = [c.task_id for c in completions]
    rows.require(len(set(ids)) == len(ids), "completions", "one completion per task", ids)
    # A commit hook may fail after the completion was written: that needs a savepoint of its own.
    atomic = conn.transaction() if on_success is not None else rows.batch_transaction(conn)
    with atomic, conn.cursor(row_factory=dict_row) as cur:
        # Every statement here reads tasks by id. Until autovacuum first analyzes state.tasks (a young
        # deployment, every benchmark round) the planner has no statistics and scans the whole table
        # for each batch instead of reading the primary key (docs/decisions/0304): rule that out for
        # this completion's statements, and give a commit hook back the planner as configured.
        planner = cur.execute(_SEQSCAN_OFF).fetchone()
        # Successes of live attempts (nearly every completion) are fenced and written in one
        # statement; the rest (failures, refusals, repeats) are decided by lifecycle below.
        succeeded = _complete_succeeded(cur, [c for c in completions if isinstance(c.result, models.Success)])
        rest = [c.task_id for c in completions if c.task_id not in succeeded]
        snaps = rows.lock(cur, rest) if rest else {}
        outcomes: dict[UUID, models.Task | errors.DispatcherError | lifecycle.Transition] = {}
        for c in completions:
            if c.task_id in succeeded:
                continue
            snap = snaps.get(c.task_id)
            try:
                if snap is None:
                    raise errors.TaskNotFoundError(c.task_id)
                decided = lifecycle.complete(snap, c.attempt, c.lease_token, c.result, jitter())
            except errors.DispatcherError as exc:
                outcomes[c.task_id] = exc
                continue
            outcomes[c.task_id] = snap.task if decided is None else decided
        moved = rows.apply(cur, [o for o in outcomes.values() if isinstance(o, lifecycle.Transition)])
        if tasks_back and succeeded:  # already locked by this transaction: a plain read
            moved.update((task_id, snap.task) for task_id, snap in rows.lock(cur, list(succeeded)).items())
        final: list[models.Task | models.Status | errors.DispatcherError] = []
        for c in completions:
            if c.task_id in succeeded and not tasks_back:
                final.append("completed")
                continue
            after = moved.get(c.task_id) or outcomes[c.task_id]
            # the rows are locked: apply_transitions writes (and returns) every transition it is given
            assert not isinstance(after, lifecycle.Transition), f"task {c.task_id}: a transition was not written"
            final.append(after if tasks_back or not isinstance(after, models.Task) else after.status)
        cur.execute(_SEQSCAN_BACK, {"value": planner["was"] if planner else "on"})
        if on_success is not None:
            for c, done in zip(completions, final):
                applied = c.task_id in succeeded or c.task_id in moved  # not a repeat, not refused
                if applied and isinstance(done, models.Task) and done.status == "completed":
                    on_success(conn, done, done.outputs or {})
        return final


def _complete_succeeded(cur: psycopg.Cursor[rows.Row], completions: Sequence[models.Completion]) -> set[UUID]:
    """Apply the successes whose attempt passes the fence; the ids of the tasks they completed."""
    if not completions:
        return set()
    items = [
        {"task_id": str(c.task_id), "attempt": c.attempt, "lease_token": str(c.lease_token),
         "outputs": c.result.outputs}  # type: ignore[union-attr]
        for c in completions
    ]
    ids = [c.task_id for c in completions]
    found = cur.execute(queries.get("complete_succeeded"), {"items": Jsonb(items), "ids": ids}).fetchall()
    return {row["task_id"] for row in found}


def abandon(
    conn: psycopg.Connection[Any], task_id: UUID, *, attempt: int, lease_token: UUID, reason: str
) -> models.Task:
    """Give the lease back (worker shutdown): the attempt counts as failed and the task is retried at once."""
    task_id = rows.check_uuid("task_id", task_id)
    rows.require(isinstance(reason, str) and 0 < len(reason) <= 10_000, "reason", "a non-empty string", reason)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        snap = rows.lock(cur, [task_id]).get(task_id)
        if snap is None:
            raise errors.TaskNotFoundError(task_id)
        lifecycle.fence(snap, attempt, rows.check_uuid("lease_token", lease_token))
        return rows.apply(cur, [lifecycle.after_abandon(snap.task, reason)])[task_id]


def get(conn: psycopg.Connection[Any], task_id: UUID) -> models.Task:
    """The task, or TaskNotFoundError."""
    task_id = rows.check_uuid("task_id", task_id)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(queries.get("get_task"), {"task_id": task_id}).fetchone()
    if row is None:
        raise errors.TaskNotFoundError(task_id)
    return models.Task.from_row(row)


def list_tasks(
    conn: psycopg.Connection[Any], *, status: models.Status | None = None, limit: int = 100
) -> list[models.Task]:
    """Tasks, newest first, optionally only those in ``status``."""
    statuses = ("queued", "running", "completed", "failed", "dead")
    rows.require(status is None or status in statuses, "status", "one of " + ", ".join(statuses), status)
    params = {"status": status, "limit": rows.check_int("limit", limit, 1, MAX_BATCH)}
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return [models.Task.from_row(row) for row in cur.execute(queries.get("list_tasks"), params).fetchall()]


def attempts(conn: psycopg.Connection[Any], task_id: UUID) -> list[dict[str, Any]]:
    """The task's attempts in order: worker, lease token, lease expiry, heartbeat, outcome, error."""
    task_id = rows.check_uuid("task_id", task_id)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(queries.get("attempts"), {"task_id": task_id}).fetchall()
