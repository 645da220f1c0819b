"""Property test: random sequences of dispatcher calls on real Postgres never break the invariants.

A simple in-memory model predicts each call's result; after every step the
database is checked for invariants 1-4 of docs/architecture/task_lifecycle.md:
at most one live lease per task, attempt numbers only increase, completed
tasks never change, every queued task has a wake-up, and dead means max attempts.
Time moves by shifting deadlines (conftest.advance), never by sleeping.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from trace_core.dispatcher import errors, models, outbox, reaper, tasks

from tests.integration.dispatcher import conftest as helpers

LEASE_SECONDS = 30


@dataclasses.dataclass
class ModelTask:
    max_attempts: int
    backoff_base_ms: int
    status: str = "queued"
    attempt: int = 0
    due: bool = True
    live_token: uuid.UUID | None = None
    lease_expired: bool = False
    # The completion applied by the current attempt: (token, result); a repeat of it is a no-op.
    applied: tuple[uuid.UUID, Any] | None = None


@dataclasses.dataclass(frozen=True)
class HeldLease:
    task_id: uuid.UUID
    attempt: int
    token: uuid.UUID


results = st.one_of(
    st.builds(models.Success, outputs=st.sampled_from([{}, {"rows": 1}])),
    st.builds(models.Failure, error=st.sampled_from(["boom", "bad"]), retryable=st.booleans()),
)


class DispatcherMachine(RuleBasedStateMachine):
    task_ids = Bundle("task_ids")
    leases = Bundle("leases")

    def __init__(self, conn: helpers.Conn, driver: helpers.RecordingDriver, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        # Task ids decide the order of equally due tasks in claim_next: make them repeatable,
        # so that hypothesis can replay and shrink a failing sequence.
        ids = iter(range(1, 1_000_000))
        monkeypatch.setattr(tasks, "uuid4", lambda: uuid.UUID(int=next(ids)))
        self.conn = conn
        self.driver = driver
        self.model: dict[uuid.UUID, ModelTask] = {}
        self.seen_attempts: dict[uuid.UUID, int] = {}
        self.completed_rows: dict[uuid.UUID, dict[str, Any]] = {}

    @initialize()
    def clean(self) -> None:
        helpers.reset(self.conn)

    # ------------------------------------------------------------------ rules
    @rule(target=task_ids, max_attempts=st.integers(1, 3), base=st.sampled_from([0, 60_000]))
    def create(self, max_attempts: int, base: int) -> uuid.UUID:
        task = tasks.create(self.conn, models.CreateTask(operator="noop", max_attempts=max_attempts,
                                                         backoff_base_ms=base))
        self.model[task.task_id] = ModelTask(max_attempts, base)
        return task.task_id

    def _claimed(self, lease: models.Lease) -> HeldLease:
        m = self.model[lease.task.task_id]
        assert (m.status, m.due) == ("queued", True)
        m.status, m.attempt, m.live_token, m.lease_expired, m.applied = (
            "running", m.attempt + 1, lease.lease_token, False, None)
        assert lease.attempt == m.attempt
        return HeldLease(lease.task.task_id, lease.attempt, lease.lease_token)

    @rule(target=leases, task_id=task_ids)
    def claim(self, task_id: uuid.UUID):
        m = self.model[task_id]
        if m.status == "queued" and m.due:
            return self._claimed(tasks.claim(self.conn, task_id, worker_id="w", lease_seconds=LEASE_SECONDS))
        with pytest.raises(errors.NotClaimableError) as info:
            tasks.claim(self.conn, task_id, worker_id="w")
        assert (info.value.status, info.value.current_attempt) == (m.status, m.attempt)
        return multiple()

    @rule(target=leases, limit=st.integers(1, 3))
    def claim_next(self, limit: int):
        claimable = {t for t, m in self.model.items() if m.status == "queued" and m.due}
        got = tasks.claim_next(self.conn, worker_id="w", limit=limit, lease_seconds=LEASE_SECONDS)
        assert len(got) == min(limit, len(claimable))
        assert {lease.task.task_id for lease in got} <= claimable
        return multiple(*(self._claimed(lease) for lease in got))

    def _fence_error(self, held: HeldLease) -> type[errors.DispatcherError] | None:
        """What the fence must say for this lease now; None if it passes."""
        m = self.model[held.task_id]
        if held.attempt != m.attempt or held.token != m.live_token:
            return errors.StaleAttemptError
        if m.status == "running" and not m.lease_expired:
            return None
        if m.status == "running" or m.applied == (held.token, "expired"):
            return errors.LeaseExpiredError
        return errors.StaleAttemptError

    @rule(held=leases)
    def heartbeat(self, held: HeldLease) -> None:
        expected = self._fence_error(held)
        if expected is None:
            lease = tasks.heartbeat(self.conn, held.task_id, attempt=held.attempt, lease_token=held.token,
                                    lease_seconds=LEASE_SECONDS)
            assert lease.attempt == held.attempt
        else:
            with pytest.raises(expected):
                tasks.heartbeat(self.conn, held.task_id, attempt=held.attempt, lease_token=held.token)

    def _finish(self, m: ModelTask, outcome: str, retryable: bool, delay: bool) -> None:
        m.live_token = m.live_token  # the token stays known: repeats of its completion are recognised
        if outcome == "succeeded":
            m.status = "completed"
        elif not retryable:
            m.status = "failed"
        elif m.attempt >= m.max_attempts:
            m.status = "dead"
        else:
            m.status, m.due = "queued", not (delay and m.backoff_base_ms > 0)

    @rule(held=leases, result=results)
    def complete(self, held: HeldLease, result: models.Success | models.Failure) -> None:
        m = self.model[held.task_id]
        before = tasks.get(self.conn, held.task_id)
        if m.applied == (held.token, result) and held.attempt == m.attempt:
            assert tasks.complete(self.conn, held.task_id, attempt=held.attempt, lease_token=held.token,
                                  result=result) == before
            return
        expected = self._fence_error(held)
        if expected is not None:
            with pytest.raises(expected):
                tasks.complete(self.conn, held.task_id, attempt=held.attempt, lease_token=held.token, result=result)
            assert tasks.get(self.conn, held.task_id) == before
            return
        after = tasks.complete(self.conn, held.task_id, attempt=held.attempt, lease_token=held.token, result=result)
        success = isinstance(result, models.Success)
        self._finish(m, "succeeded" if success else "failed", success or result.retryable, delay=True)
        m.applied = (held.token, result)
        assert (after.status, after.attempt) == (m.status, m.attempt)

    @rule(held=leases)
    def abandon(self, held: HeldLease) -> None:
        m = self.model[held.task_id]
        expected = self._fence_error(held)
        if expected is not None:
            with pytest.raises(expected):
                tasks.abandon(self.conn, held.task_id, attempt=held.attempt, lease_token=held.token, reason="stop")
            return
        tasks.abandon(self.conn, held.task_id, attempt=held.attempt, lease_token=held.token, reason="stop")
        self._finish(m, "abandoned", True, delay=False)
        m.applied = (held.token, "abandoned")

    @rule()
    def time_passes(self) -> None:
        """An hour passes: every lease expires and every backoff is over."""
        helpers.advance(self.conn, 3600)
        for m in self.model.values():
            if m.status == "running":
                m.lease_expired = True
            m.due = True

    @rule()
    def reap(self) -> None:
        expired = [m for m in self.model.values() if m.status == "running" and m.lease_expired]
        assert reaper.reap(self.conn, limit=100) == len(expired)
        for m in expired:
            self._finish(m, "expired", True, delay=True)
            m.applied = (m.live_token, "expired")

    @rule()
    def drain(self) -> None:
        outbox.drain_all(self.conn, self.driver)

    # ------------------------------------------------------------- invariants
    def _rows(self) -> dict[uuid.UUID, dict[str, Any]]:
        return {r["task_id"]: r for r in self.conn.execute("SELECT * FROM state.tasks").fetchall()}

    @invariant()
    def agrees_with_the_model(self) -> None:
        rows = self._rows()
        assert {t: (r["status"], r["attempt"]) for t, r in rows.items()} == {
            t: (m.status, m.attempt) for t, m in self.model.items()}

    @invariant()
    def one_live_lease_at_most(self) -> None:
        live = self.conn.execute(
            "SELECT t.task_id, t.status, t.attempt, count(a.*) AS live, max(a.attempt) AS live_attempt "
            "FROM state.tasks t LEFT JOIN state.task_attempts a "
            "ON a.task_id = t.task_id AND a.finished_at IS NULL GROUP BY t.task_id").fetchall()
        for r in live:
            assert r["live"] <= 1
            assert (r["status"] == "running") == (r["live"] == 1)
            if r["live"]:
                assert r["live_attempt"] == r["attempt"]

    @invariant()
    def attempts_only_increase(self) -> None:
        for task_id, row in self._rows().items():
            assert row["attempt"] >= self.seen_attempts.get(task_id, 0)
            assert row["attempt"] <= row["max_attempts"]
            self.seen_attempts[task_id] = row["attempt"]
        gaps = self.conn.execute(
            "SELECT t.task_id FROM state.tasks t LEFT JOIN state.task_attempts a USING (task_id) "
            "GROUP BY t.task_id, t.attempt HAVING count(a.attempt) <> t.attempt "
            "OR coalesce(max(a.attempt), 0) <> t.attempt").fetchall()
        assert gaps == []

    @invariant()
    def completed_tasks_never_change(self) -> None:
        for task_id, row in self._rows().items():
            if task_id in self.completed_rows:
                assert row == self.completed_rows[task_id]
            elif row["status"] == "completed":
                self.completed_rows[task_id] = row

    @invariant()
    def every_queued_task_has_a_wake_up(self) -> None:
        missing = self.conn.execute(
            "SELECT t.task_id FROM state.tasks t WHERE t.status = 'queued' AND NOT EXISTS ("
            " SELECT 1 FROM state.outbox o WHERE o.payload->>'task_id' = t.task_id::text"
            " AND (o.payload->>'attempt')::int = t.attempt)").fetchall()
        assert missing == []

    @invariant()
    def dead_means_max_attempts(self) -> None:
        rows = self.conn.execute(
            "SELECT t.status, t.attempt, t.max_attempts, d.task_id IS NOT NULL AS recorded "
            "FROM state.tasks t LEFT JOIN state.dead_tasks d USING (task_id)").fetchall()
        for r in rows:
            assert r["recorded"] == (r["status"] == "dead")
            if r["status"] == "dead":
                assert r["attempt"] == r["max_attempts"]


def test_task_lifecycle_state_machine(conn, driver, monkeypatch):
    run_state_machine_as_test(
        lambda: DispatcherMachine(conn, driver, monkeypatch),
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
