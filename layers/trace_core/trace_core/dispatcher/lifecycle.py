"""The task/lease state machine as pure functions: fences, retry decisions and backoff.

No I/O here. :mod:`trace_core.dispatcher.tasks` and :mod:`~trace_core.dispatcher.reaper`
lock the rows, read a :class:`Snapshot` (with the database's clock), ask these
functions what to do, and write the resulting :class:`Transition` in the same
transaction. See docs/architecture/task_lifecycle.md for the diagram.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from trace_core.dispatcher import errors, models

# Retry delays grow exponentially from the task's backoff_base_ms up to this cap...
MAX_BACKOFF_MS = 15 * 60 * 1000
# ...plus up to 25% jitter (never more than this), so retries of a burst spread out.
MAX_JITTER_MS = 60 * 1000

Outcome = Literal["succeeded", "failed", "expired", "abandoned"]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A locked task row, its current attempt row (if any) and the database's ``now()``."""

    task: models.Task
    live_token: UUID | None
    attempt_outcome: str | None
    attempt_error: str | None
    now: datetime


@dataclasses.dataclass(frozen=True)
class Transition:
    """What to write: the task's next status and how its current attempt ended."""

    task_id: UUID
    attempt: int
    status: models.Status
    outcome: Outcome
    error: str | None = None
    outputs: dict[str, Any] | None = None
    delay_ms: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "task_id": str(self.task_id),
            "attempt": self.attempt,
            "status": self.status,
            "outcome": self.outcome,
            "error": self.error,
            "outputs": self.outputs,
            "delay_ms": self.delay_ms,
        }


def backoff_ms(base_ms: int, attempt: int, rand: float) -> int:
    """Delay before the retry that follows ``attempt`` (1-based); ``rand`` is uniform in [0, 1)."""
    delay = min(MAX_BACKOFF_MS, base_ms * 2 ** max(0, min(attempt - 1, 30)))
    jitter = min(delay // 4, MAX_JITTER_MS)
    return int(delay + rand * jitter)


def not_claimable(task: models.Task, now: datetime) -> errors.NotClaimableError:
    """Why a claim of ``task`` found nothing to claim (it was not queued and due)."""
    if task.status == "queued":
        reason = f"task {task.task_id} is not due until {task.not_before.isoformat()}"
    elif task.status == "running":
        reason = f"task {task.task_id} is already leased by attempt {task.attempt}"
    else:
        reason = f"task {task.task_id} is {task.status}"
    return errors.NotClaimableError(
        reason,
        task_id=task.task_id,
        status=task.status,
        current_attempt=task.attempt,
        not_before=task.not_before.isoformat() if task.status == "queued" else None,
    )


def fence(snap: Snapshot, attempt: int, lease_token: UUID) -> None:
    """Pass only the live attempt with its own token and an unexpired lease; raise otherwise."""
    task = snap.task
    if attempt != task.attempt:
        raise errors.StaleAttemptError(
            f"attempt {attempt} of task {task.task_id} is stale: the current attempt is {task.attempt}",
            task_id=task.task_id,
            current_attempt=task.attempt,
        )
    if snap.live_token is None or lease_token != snap.live_token:
        raise errors.StaleAttemptError(
            f"lease token does not match attempt {attempt} of task {task.task_id}",
            task_id=task.task_id,
            current_attempt=task.attempt,
        )
    if snap.attempt_outcome == "expired":
        raise errors.LeaseExpiredError(
            f"the lease of attempt {attempt} of task {task.task_id} expired and was reaped",
            task_id=task.task_id,
            current_attempt=task.attempt,
        )
    if snap.attempt_outcome is not None or task.status != "running":
        raise errors.StaleAttemptError(
            f"attempt {attempt} of task {task.task_id} already finished ({snap.attempt_outcome}); "
            f"the task is {task.status}",
            task_id=task.task_id,
            current_attempt=task.attempt,
            status=task.status,
        )
    if task.lease_expires_at is None or task.lease_expires_at <= snap.now:
        raise errors.LeaseExpiredError(
            f"the lease of attempt {attempt} of task {task.task_id} expired",
            task_id=task.task_id,
            current_attempt=task.attempt,
        )


def is_repeat(snap: Snapshot, attempt: int, lease_token: UUID, result: models.Success | models.Failure) -> bool:
    """True if this exact completion was already applied (a retried request): answer it unchanged."""
    task = snap.task
    if attempt != task.attempt or snap.live_token is None or lease_token != snap.live_token:
        return False
    if isinstance(result, models.Success):
        return (snap.attempt_outcome == "succeeded" and task.status == "completed"
                and same_json(task.outputs, result.outputs))
    if snap.attempt_outcome != "failed" or snap.attempt_error != result.error:
        return False
    return task.status == "failed" if not result.retryable else task.status in ("queued", "dead")


def same_json(stored: Any, sent: Any) -> bool:
    """Whether ``sent`` is the JSON value ``stored`` holds: numbers compared by value, as jsonb keeps them
    (a float 1e308 is stored as numeric and read back as the integer 10**308)."""
    def exact(value: Any) -> Any:
        return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)

    return bool(exact(stored) == exact(sent))


def _retry_or_dead(task: models.Task, outcome: Outcome, error: str, delay_ms: int) -> Transition:
    if task.attempt >= task.max_attempts:
        return Transition(task.task_id, task.attempt, "dead", outcome, error=error)
    return Transition(task.task_id, task.attempt, "queued", outcome, error=error, delay_ms=delay_ms)


def after_success(task: models.Task, result: models.Success) -> Transition:
    return Transition(task.task_id, task.attempt, "completed", "succeeded", outputs=result.outputs)


def after_failure(task: models.Task, result: models.Failure, rand: float) -> Transition:
    """Non-retryable -> failed; retryable -> queued after backoff, or dead when no attempts are left."""
    if not result.retryable:
        return Transition(task.task_id, task.attempt, "failed", "failed", error=result.error)
    return _retry_or_dead(task, "failed", result.error, backoff_ms(task.backoff_base_ms, task.attempt, rand))


def after_expiry(task: models.Task, rand: float) -> Transition:
    """A lease ran out without completion (the worker died or stalled): retry with backoff, or dead."""
    expired = task.lease_expires_at.isoformat() if task.lease_expires_at else "?"
    error = f"lease of attempt {task.attempt} expired at {expired}"
    return _retry_or_dead(task, "expired", error, backoff_ms(task.backoff_base_ms, task.attempt, rand))


def after_abandon(task: models.Task, reason: str) -> Transition:
    """The worker gave the lease back (SIGTERM): a failed attempt, retried at once, or dead if it was the last."""
    return _retry_or_dead(task, "abandoned", f"abandoned: {reason}", 0)


def complete(
    snap: Snapshot, attempt: int, lease_token: UUID, result: models.Success | models.Failure, rand: float
) -> Transition | None:
    """The transition a completion causes; ``None`` for an idempotent repeat. Raises if fenced off."""
    if is_repeat(snap, attempt, lease_token, result):
        return None
    fence(snap, attempt, lease_token)
    if isinstance(result, models.Success):
        return after_success(snap.task, result)
    return after_failure(snap.task, result, rand)
