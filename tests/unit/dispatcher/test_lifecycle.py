"""The pure state-machine rules: fences, repeats, retry decisions and backoff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from trace_core.dispatcher import errors, lifecycle, models

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = uuid.uuid4()


def _task(**fields) -> models.Task:
    base = {
        "task_id": uuid.uuid4(),
        "job_id": None,
        "operator": "noop",
        "payload": {},
        "idempotency_key": None,
        "queue": "q",
        "status": "running",
        "attempt": 1,
        "max_attempts": 3,
        "backoff_base_ms": 1000,
        "lease_expires_at": NOW + timedelta(seconds=10),
        "not_before": NOW,
        "outputs": None,
        "last_error": None,
        "created_at": NOW,
        "updated_at": NOW,
        "finished_at": None,
    }
    base.update(fields)
    return models.Task(**base)


def _snap(task: models.Task, *, outcome: str | None = None, error: str | None = None,
          token: uuid.UUID | None = TOKEN) -> lifecycle.Snapshot:
    return lifecycle.Snapshot(task=task, live_token=token, attempt_outcome=outcome, attempt_error=error, now=NOW)


def test_backoff_doubles_per_attempt_and_is_capped():
    assert [lifecycle.backoff_ms(1000, n, 0.0) for n in (1, 2, 3, 4)] == [1000, 2000, 4000, 8000]
    assert lifecycle.backoff_ms(1000, 60, 0.0) == lifecycle.MAX_BACKOFF_MS
    assert lifecycle.backoff_ms(0, 5, 0.99) == 0


def test_jitter_adds_at_most_a_quarter_and_never_more_than_the_cap():
    assert lifecycle.backoff_ms(1000, 1, 0.999) == 1249
    top = lifecycle.backoff_ms(1000, 60, 0.999)
    assert top - lifecycle.MAX_BACKOFF_MS <= lifecycle.MAX_JITTER_MS


def test_fence_passes_only_the_live_attempt_with_its_token_and_time_left():
    lifecycle.fence(_snap(_task()), 1, TOKEN)
    with pytest.raises(errors.StaleAttemptError) as info:
        lifecycle.fence(_snap(_task(attempt=2)), 1, TOKEN)
    assert info.value.current_attempt == 2
    with pytest.raises(errors.StaleAttemptError):
        lifecycle.fence(_snap(_task()), 1, uuid.uuid4())
    with pytest.raises(errors.StaleAttemptError):
        lifecycle.fence(_snap(_task(), token=None), 1, TOKEN)
    with pytest.raises(errors.LeaseExpiredError):
        lifecycle.fence(_snap(_task(lease_expires_at=NOW)), 1, TOKEN)
    with pytest.raises(errors.LeaseExpiredError):
        lifecycle.fence(_snap(_task(status="queued", lease_expires_at=None), outcome="expired"), 1, TOKEN)
    with pytest.raises(errors.StaleAttemptError):
        lifecycle.fence(_snap(_task(status="completed", lease_expires_at=None), outcome="succeeded"), 1, TOKEN)


def test_a_repeat_is_only_the_same_result_from_the_same_attempt():
    done = _snap(_task(status="completed", lease_expires_at=None, outputs={"a": 1}), outcome="succeeded")
    assert lifecycle.complete(done, 1, TOKEN, models.Success(outputs={"a": 1}), 0.0) is None
    for attempt, token, result in [
        (1, TOKEN, models.Success(outputs={"a": 2})),
        (1, uuid.uuid4(), models.Success(outputs={"a": 1})),
        (1, TOKEN, models.Failure(error="x")),
    ]:
        with pytest.raises(errors.StaleAttemptError):
            lifecycle.complete(done, attempt, token, result, 0.0)
    requeued = _snap(_task(status="queued", lease_expires_at=None), outcome="failed", error="x")
    assert lifecycle.is_repeat(requeued, 1, TOKEN, models.Failure(error="x"))
    assert not lifecycle.is_repeat(requeued, 1, TOKEN, models.Failure(error="x", retryable=False))


def test_a_repeat_compares_outputs_as_stored_json_numbers():
    # GIVEN outputs whose float Postgres's jsonb read back as an exact integer (1e308 -> 10**308)
    done = _snap(_task(status="completed", lease_expires_at=None, outputs={"a": 10**308, "b": [1, 2.5]}),
                 outcome="succeeded")
    # THEN the same completion sent again is a repeat, and a different number is not
    assert lifecycle.is_repeat(done, 1, TOKEN, models.Success(outputs={"a": 1e308, "b": [1.0, 2.5]}))
    assert not lifecycle.is_repeat(done, 1, TOKEN, models.Success(outputs={"a": 1e307, "b": [1, 2.5]}))


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "result", "status", "delay"),
    [
        (1, 3, models.Failure(error="e"), "queued", 1000),
        (2, 3, models.Failure(error="e"), "queued", 2000),
        (3, 3, models.Failure(error="e"), "dead", 0),
        (1, 3, models.Failure(error="e", retryable=False), "failed", 0),
        (1, 3, models.Success(outputs={"k": 1}), "completed", 0),
    ],
)
def test_completion_decisions(attempt, max_attempts, result, status, delay):
    snap = _snap(_task(attempt=attempt, max_attempts=max_attempts))
    transition = lifecycle.complete(snap, attempt, TOKEN, result, 0.0)
    assert transition is not None
    assert (transition.status, transition.delay_ms) == (status, delay)


def test_expiry_and_abandon_count_as_attempts():
    assert lifecycle.after_expiry(_task(attempt=1), 0.0).status == "queued"
    assert lifecycle.after_expiry(_task(attempt=3), 0.0).status == "dead"
    abandoned = lifecycle.after_abandon(_task(attempt=1, backoff_base_ms=60_000), "SIGTERM")
    assert (abandoned.status, abandoned.delay_ms, abandoned.outcome) == ("queued", 0, "abandoned")
    assert lifecycle.after_abandon(_task(attempt=3), "SIGTERM").status == "dead"


def test_not_claimable_says_why():
    assert "not due" in lifecycle.not_claimable(_task(status="queued", lease_expires_at=None), NOW).message
    err = lifecycle.not_claimable(_task(attempt=2), NOW)
    assert (err.status, err.current_attempt) == ("running", 2)
