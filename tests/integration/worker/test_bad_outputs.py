"""One bad output fails only its own task: real worker, real Postgres, pgqueue and the dispatcher core.

An output Postgres cannot store (NaN, a NUL character, a lone surrogate...), an error text it cannot
store, or a completion it refuses must never take healthy tasks down with it (issue 15).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool
from trace_core.dispatcher import models, tasks
from trace_core.worker import client as client_mod
from trace_core.worker import config as worker_config
from trace_core.worker import direct, runner

from tests.integration.worker import operators_plugin
from tests.integration.worker.conftest import wait_for

pytestmark = pytest.mark.usefixtures("dispatcher_loop")

UNSTORABLE = "output not storable: "


def settle(db_pool: ConnectionPool, task_ids: list[uuid.UUID], timeout: float = 60.0) -> dict[uuid.UUID, dict]:
    """Wait until none of the tasks is queued or running; their rows by id."""
    def finished() -> dict[uuid.UUID, dict] | None:
        with db_pool.connection() as conn:
            found = conn.execute("SELECT task_id, status, attempt, outputs, last_error FROM state.tasks "
                                 "WHERE task_id = ANY(%s)", (task_ids,)).fetchall()
        done = {row["task_id"]: row for row in found}
        return done if all(row["status"] not in ("queued", "running") for row in done.values()) else None
    return wait_for(finished, timeout=timeout, interval=0.1)


def create_many(db_pool: ConnectionPool, requests: list[models.CreateTask]) -> list[models.Task]:
    with db_pool.connection() as conn:
        return tasks.create_many(conn, requests)


def test_poison_tasks_among_hundreds_fail_alone_and_every_healthy_task_completes(db_pool, queue_name, start_worker):
    # GIVEN 300 fast healthy tasks and, among them, tasks whose outputs, error text or commit hook
    # Postgres cannot store
    causes = {
        "nan": UNSTORABLE + "$.x: nan is not a JSON number (only finite numbers are stored)",
        "inf": UNSTORABLE + "$.x[1]: inf is not a JSON number (only finite numbers are stored)",
        "nul": UNSTORABLE + "$.s contains a NUL character (\\u0000), which Postgres cannot store",
        "surrogate": UNSTORABLE + "$.s is not valid Unicode (lone surrogate at index 0)",
        "raise_nul": "bad \\u0000 input",
        "hook_nul": "commit hook failed: OperatorError: hook saw \\u0000",
    }
    requests = [models.CreateTask(operator="noop", queue=queue_name) for _ in range(300)]
    requests += [models.CreateTask(operator="poison", payload={"kind": kind}, queue=queue_name) for kind in causes]
    random.Random(15).shuffle(requests)
    # WHEN one worker runs them all (fast tasks: inline runs and big completion batches)
    worker = start_worker()
    created = create_many(db_pool, requests)
    done = settle(db_pool, [t.task_id for t in created])
    # THEN every healthy task completed, in its first attempt; none is dead
    healthy = [done[t.task_id] for t in created if t.operator == "noop"]
    assert [row["status"] for row in healthy] == ["completed"] * 300
    assert {row["attempt"] for row in healthy} == {1}
    # AND each poison task failed alone, for good, with the cause in last_error
    poisoned = {t.payload["kind"]: done[t.task_id] for t in created if t.operator == "poison"}
    assert {kind: (row["status"], row["last_error"]) for kind, row in poisoned.items()} == {
        kind: ("failed", cause) for kind, cause in causes.items()
    }
    assert worker.stats["succeeded"] == 300 and worker.stats["failed"] == len(causes)
    with db_pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM state.dead_tasks").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM state.task_attempts WHERE outcome = 'expired'"
                            ).fetchone()["n"] == 0


# ---------------------------------------------------------------- any value an operator may return
def _power_of_ten(digits: int) -> int:
    """10**digits: past 4,300 digits Python refuses to write it as JSON."""
    return 10**digits


_CHARS = st.characters(exclude_categories=()) | st.sampled_from(["\x00", "\ud800", "\udfff", "\U0001f600",
                                                                  "\uffff", "\\", '"'])
_TEXT = st.text(alphabet=_CHARS, max_size=8)
_NUMBERS = (st.integers() | st.sampled_from([2**63, -(2**63) - 1]) | st.integers(300, 4400).map(_power_of_ten)
            | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, 5e-324, -0.0, 1e16]))
_LEAVES = st.none() | st.booleans() | _NUMBERS | _TEXT
_VALUES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                       max_leaves=12)


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


_RETURNS = (st.dictionaries(_TEXT, _VALUES | st.integers(58, 68).map(_nested), max_size=5)
            | st.sampled_from([{"big": "y" * (300 * 1024)}])
            | _VALUES)


def _depth(value: Any) -> int:
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return 1 + max((_depth(child) for child in children), default=0)


def postgres_stores(db_pool: ConnectionPool, value: Any) -> bool:
    """The oracle: a JSON object Postgres accepts as jsonb, within the documented bounds (256 KiB, 64 levels)."""
    if not isinstance(value, dict) or _depth(value) > models.MAX_JSON_DEPTH:
        return False
    try:
        text = json.dumps(value, separators=(",", ":"))
    except ValueError:  # an integer of more than 4,300 digits
        return False
    if len(text.encode()) > models.MAX_PAYLOAD_BYTES:
        return False
    with db_pool.connection() as conn:
        try:
            conn.execute("SELECT %s::text::jsonb", (text,))
        except psycopg.DataError:
            return False
    return True


def same_json(stored: Any, returned: Any) -> bool:
    """``stored`` is ``returned`` as JSON (a float written as 1e+308 may come back as the integer 10**308)."""
    if isinstance(returned, bool) or isinstance(stored, bool):
        return stored is returned
    if isinstance(returned, float) or isinstance(stored, float):
        return isinstance(stored, (int, float)) and float(stored) == float(returned)
    if isinstance(returned, dict):
        return (isinstance(stored, dict) and stored.keys() == returned.keys()
                and all(same_json(stored[k], returned[k]) for k in returned))
    if isinstance(returned, list):
        return (isinstance(stored, list) and len(stored) == len(returned)
                and all(same_json(s, r) for s, r in zip(stored, returned)))
    return bool(stored == returned and type(stored) is type(returned))


def test_any_value_an_operator_returns_completes_its_task_or_fails_only_that_task(db_pool, queue_name, start_worker):
    start_worker()
    seen: Counter[str] = Counter()

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
    @given(returns=st.lists(_RETURNS, min_size=1, max_size=5))
    def check(returns: list[Any]) -> None:
        # GIVEN tasks whose operator returns these values, and a healthy neighbour
        keys = [uuid.uuid4().hex for _ in returns]
        operators_plugin.ECHO.update(zip(keys, returns))
        requests = [models.CreateTask(operator="echo", payload={"key": k}, queue=queue_name) for k in keys]
        created = create_many(db_pool, [*requests, models.CreateTask(operator="noop", queue=queue_name)])
        # WHEN the worker runs them
        done = settle(db_pool, [t.task_id for t in created], timeout=30)
        # THEN the neighbour completed
        assert done[created[-1].task_id]["status"] == "completed"
        for task, value in zip(created, returns):
            row = done[task.task_id]
            assert row["attempt"] == 1
            seen[row["status"]] += 1
            if postgres_stores(db_pool, value):
                # a storable output is stored exactly
                assert row["status"] == "completed", row["last_error"]
                assert same_json(row["outputs"], value)
            else:
                # anything else fails that task for good, saying why
                assert row["status"] == "failed", row
                assert row["last_error"].startswith((UNSTORABLE, "operator echo returned ")), row["last_error"]
                assert row["outputs"] is None

    check()
    # AND the values covered both outcomes
    assert seen["completed"] >= 10 and seen["failed"] >= 10, seen


def test_hypothesis_sees_storable_and_unstorable_values(db_pool):
    """The property above is not vacuous: its strategy yields both kinds, near the bounds too."""
    assert postgres_stores(db_pool, {"a": [1, 2.5, "é\U0001f600", None, True], "n": 10**400})
    assert postgres_stores(db_pool, {"deep": _nested(62)})
    assert not postgres_stores(db_pool, {"deep": _nested(63)})
    assert not any(postgres_stores(db_pool, {"x": bad}) for bad in (math.nan, math.inf, "\x00", "\ud800"))


# ---------------------------------------------------------------- the completion path
def test_a_batch_that_fails_as_a_whole_is_split_and_each_completion_stands_alone(db_pool, driver, queue_name):
    # GIVEN 20 claimed tasks, two of whose results bypassed validation with values Postgres refuses
    created = create_many(db_pool, [models.CreateTask(operator="noop", queue=queue_name)] * 20)
    client = direct.for_driver(db_pool, driver)
    leases = client.claim_next(worker_id="w1", operators=["noop"], queue=queue_name, lease_seconds=30, limit=20)
    assert len(leases) == 20
    bad = {leases[3].task.task_id: models.Success.model_construct(outputs={"x": math.nan}),
           leases[16].task.task_id: models.Success.model_construct(outputs={"s": "a\x00"})}
    items = [client_mod.CompletionItem(lease, bad.get(lease.task.task_id) or models.Success(outputs={"i": i}))
             for i, lease in enumerate(leases)]
    # WHEN they are completed in one call
    outcomes = client.complete(items)
    # THEN the 18 others completed with their outputs, and the two failed for good, saying why
    assert outcomes == {lease.task.task_id: "failed" if lease.task.task_id in bad else "completed" for lease in leases}
    with db_pool.connection() as conn:
        for i, lease in enumerate(leases):
            task = tasks.get(conn, lease.task.task_id)
            if lease.task.task_id in bad:
                assert task.last_error is not None
                assert task.last_error.startswith("completion could not be recorded: "), task.last_error
                assert task.outputs is None
            else:
                assert task.outputs == {"i": i}
    assert {t.task_id for t in created} == set(outcomes)


def test_a_completion_held_up_longer_than_the_lease_keeps_its_lease(db_pool, driver, queue_name, make_settings,
                                                                  get_task, attempts):
    # GIVEN a worker with a 2 s lease whose completions fail (the database unreachable) for 5 s
    class Unreachable(direct.DirectClient):
        until = time.monotonic() + 3600.0

        def complete(self, items: Any) -> Any:
            if time.monotonic() < self.until:
                raise psycopg.OperationalError("connection refused (injected)")
            return super().complete(items)

    client = Unreachable(db_pool, ack_in=driver.ack_in)
    worker = runner.Worker(client, driver, make_settings(),
                           worker_config.WorkerConfig(queue=queue_name, lease_seconds=2, receive_wait_seconds=0.5))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        task = create_many(db_pool, [models.CreateTask(operator="noop", queue=queue_name)])[0]
        wait_for(lambda: worker.stats["claimed"] == 1)
        Unreachable.until = time.monotonic() + 5.0
        # WHEN the database comes back
        # THEN the finished attempt's completion is recorded: its lease was heartbeaten all along
        done = wait_for(lambda: (t := get_task(task.task_id)).status not in ("queued", "running") and t, timeout=20)
        assert done.status == "completed" and done.attempt == 1
        assert [a["outcome"] for a in attempts(task.task_id)] == ["succeeded"]
    finally:
        worker.request_stop("abandon")
        thread.join(timeout=15)


def test_a_completion_that_cannot_even_be_failed_is_answered_with_the_error_not_retried_forever(
        db_pool, queue_name, get_task):
    # GIVEN a client whose every completion transaction fails (its wake-up ack is broken), and two claimed tasks
    def broken_ack(conn: Any, messages: Any) -> None:
        raise ValueError("ack is broken (injected)")

    client = direct.DirectClient(db_pool, ack_in=broken_ack)
    create_many(db_pool, [models.CreateTask(operator="noop", queue=queue_name)] * 2)
    leases = client.claim_next(worker_id="w1", operators=["noop"], queue=queue_name, lease_seconds=30, limit=2)
    # WHEN their completions are reported
    outcomes = client.complete([client_mod.CompletionItem(lease, models.Success(outputs={})) for lease in leases])
    # THEN the call returns, answering each task with the cause; the tasks stay leased (the reaper retries them)
    assert set(outcomes) == {lease.task.task_id for lease in leases}
    for lease in leases:
        assert "could not be recorded: ValueError: ack is broken (injected)" in str(outcomes[lease.task.task_id])
        assert get_task(lease.task.task_id).status == "running"
