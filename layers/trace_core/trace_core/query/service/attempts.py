"""Task tokens are fenced like completions: good only while their attempt is the task's live one."""

from __future__ import annotations

import uuid
from typing import Protocol

from psycopg_pool import ConnectionPool

from trace_core.auth import errors as auth_errors
from trace_core.db import queries


class TaskAttempts(Protocol):
    def check_live(self, task_id: uuid.UUID, attempt: int) -> None:
        """Raise TokenInvalidError(problem="stale_task") unless ``attempt`` is the running attempt of ``task_id``."""


class PostgresTaskAttempts:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def check_live(self, task_id: uuid.UUID, attempt: int) -> None:
        with self._pool.connection() as conn:
            row = conn.execute(queries.load("trace_core.query.service")["task_attempt"],
                               {"task_id": task_id}).fetchone()
        if row is None:
            raise auth_errors.TokenInvalidError(f"task {task_id} does not exist", problem="stale_task")
        status, current = (row["status"], row["attempt"]) if isinstance(row, dict) else row
        if status != "running" or current != attempt:
            raise auth_errors.TokenInvalidError(
                f"task {task_id} attempt {attempt} is no longer live (task is {status}, attempt {current})",
                problem="stale_task",
            )
