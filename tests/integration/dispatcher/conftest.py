"""Helpers for the dispatcher's integration tests: a clean state per test, a movable clock, a recording driver."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core.dispatcher import tasks
from trace_core.queue import base

Conn = psycopg.Connection[dict[str, Any]]


def reset(conn: Conn) -> None:
    """Empty the dispatcher's tables (jobs too), keeping the schema."""
    conn.execute("TRUNCATE state.task_attempts, state.dead_tasks, state.outbox, state.dataset_versions, "
                 "state.tasks, state.jobs CASCADE")
    conn.commit()


def advance(conn: Conn, seconds: float) -> None:
    """Let ``seconds`` pass for every lease, backoff and pending wake-up (by moving them back).

    The core reads time only from Postgres ``now()``; moving the deadlines is the
    same as moving the clock forward, and needs no hooks in the code under test.
    """
    shift = {"s": seconds}
    conn.execute("UPDATE state.tasks SET lease_expires_at = lease_expires_at - %(s)s * interval '1 second', "
                 "not_before = not_before - %(s)s * interval '1 second' WHERE status IN ('queued', 'running')", shift)
    conn.execute("UPDATE state.task_attempts SET lease_expires_at = lease_expires_at - %(s)s * interval '1 second' "
                 "WHERE finished_at IS NULL", shift)
    conn.execute("UPDATE state.outbox SET not_before = not_before - %(s)s * interval '1 second' "
                 "WHERE published_at IS NULL", shift)
    conn.commit()


class RecordingDriver:
    """An in-memory QueueDriver that records what was published (thread-safe). Publish-only."""

    def __init__(self, fail_queues: Sequence[str] = ()) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.fail_queues = set(fail_queues)
        self._lock = threading.Lock()

    def publish(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        if queue in self.fail_queues:
            raise ConnectionError(f"queue {queue} is unreachable")
        with self._lock:
            self.published.extend((queue, dict(b)) for b in bodies)

    def bodies(self, queue: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [b for q, b in self.published if queue is None or q == queue]

    def receive(self, queue: str, **_: Any) -> list[base.Message]:
        raise NotImplementedError

    def ack(self, messages: Sequence[base.Message]) -> None:
        raise NotImplementedError

    def extend(self, message: base.Message, visibility_seconds: int) -> None:
        raise NotImplementedError

    def dead_letter(self, message: base.Message, reason: str) -> None:
        raise NotImplementedError


@pytest.fixture
def connect(database_url: str) -> Iterator[Callable[[], Conn]]:
    """Factory: a new connection to this module's database (all closed after the test)."""
    opened: list[Conn] = []

    def make() -> Conn:
        conn = psycopg.connect(database_url, row_factory=dict_row)
        opened.append(conn)
        return conn

    yield make
    for conn in opened:
        conn.close()


@pytest.fixture
def conn(connect: Callable[[], Conn]) -> Conn:
    """A connection to a database whose dispatcher tables are empty."""
    c = connect()
    reset(c)
    return c


@pytest.fixture
def driver() -> RecordingDriver:
    return RecordingDriver()


@pytest.fixture(autouse=True)
def _no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic backoff: no jitter unless a test asks for it."""
    monkeypatch.setattr(tasks, "jitter", lambda: 0.0)
