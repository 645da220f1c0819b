"""The sink's Postgres adapter: stage batches (with their outbox pointer) and apply them.

All SQL is in ``queries.sql``. Postgres errors are translated to
:class:`~trace_core.sink.errors.SinkStoreError` here, never leaked raw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, LiteralString
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from trace_core.db import queries
from trace_core.sink import core, errors, models

Row = dict[str, Any]


def query(name: str) -> LiteralString:
    """The text of a named query of ``sink/queries.sql``."""
    return queries.load("trace_core.sink")[name]


def _batch(row: Row | None) -> models.StagedBatch | None:
    return models.StagedBatch.model_validate(row) if row is not None else None


def stage(
    conn: psycopg.Connection[Any],
    plan: core.Plan,
    *,
    queue: str,
    org_id: UUID | None = None,
    task_id: UUID | None = None,
    attempt: int | None = None,
) -> UUID:
    """Stage ``plan``'s rows and its outbox pointer in the caller's transaction; returns the batch id.

    Nothing is published until the caller commits (invariant 2): a rolled-back
    producer leaves neither a batch nor a message behind.
    """
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(query("stage_batch"), {
                "sink": plan.sink, "org_id": org_id, "task_id": task_id, "attempt": attempt,
                "records": Jsonb(list(plan.rows)), "record_count": len(plan.rows),
            }).fetchone()
            assert row is not None
            batch_id: UUID = row["batch_id"]
            cur.execute(query("enqueue_pointer"), {
                "queue": queue, "payload": Jsonb({"batch_id": str(batch_id), "sink": plan.sink}),
            })
    except psycopg.errors.ForeignKeyViolation as exc:
        field, expected = (("task_id", "the task and attempt of an existing attempt")
                           if exc.diag.constraint_name == "sink_batches_attempt_fk" else ("org_id", "an existing org"))
        raise errors.InvalidSinkInputError(f"{field}: {exc.diag.message_detail or exc}; expected {expected}",
                                           field=field, expected=expected) from exc
    except psycopg.Error as exc:
        raise errors.SinkStoreError(f"staging a {plan.sink} batch failed: {exc}", operation="stage") from exc
    return batch_id


def requeue(conn: psycopg.Connection[Any], batch_ids: list[UUID], *, queue: str) -> list[UUID]:
    """Write a new outbox pointer for each of ``batch_ids`` not yet applied; returns those requeued."""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            found = cur.execute(query("requeue"), {"batch_ids": batch_ids, "queue": queue}).fetchall()
    except psycopg.Error as exc:
        raise errors.SinkStoreError(f"requeueing batches failed: {exc}", operation="requeue") from exc
    return [row["batch_id"] for row in found]


def summary(conn: psycopg.Connection[Any], *, rejected_limit: int = 10) -> tuple[list[Row], list[Row]]:
    """Batch counts by sink and status, and the newest rejected batches (with why)."""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            counts = cur.execute(query("batch_counts")).fetchall()
            rejected = cur.execute(query("rejected_batches"), {"limit": rejected_limit}).fetchall()
    except psycopg.Error as exc:
        raise errors.SinkStoreError(f"reading sink batches failed: {exc}", operation="summary") from exc
    return counts, rejected


class BatchTransaction:
    """One open transaction of :meth:`PostgresSinkStore.transaction` (lock, write, mark)."""

    def __init__(self, cur: psycopg.Cursor[Row]) -> None:
        self._cur = cur

    def lock(self, batch_id: UUID) -> models.StagedBatch | None:
        """The batch, locked until the transaction ends (None if it was never staged)."""
        return _batch(self._cur.execute(query("lock_batch"), {"batch_id": batch_id}).fetchone())

    def insert(self, batch: models.StagedBatch, plan: core.Plan, *, message_id: str) -> int:
        """Insert the plan's rows, skipping dedupe keys already stored; returns how many were new."""
        params = {
            "org_id": batch.org_id, "batch_id": batch.batch_id, "message_id": message_id,
            "rows": Jsonb(list(plan.rows)),
        }
        if plan.target == "alert_events":
            self._cur.execute(query("insert_alert_events"), params | {"task_id": batch.task_id,
                                                                        "attempt": batch.attempt})
        else:
            self._cur.execute(query("insert_sink_outputs"), params | {"sink": plan.sink})
        return max(self._cur.rowcount, 0)

    def mark_applied(self, batch_id: UUID, *, inserted: int, duplicates: int, message_id: str) -> None:
        self._cur.execute(query("mark_applied"), {
            "batch_id": batch_id, "inserted": inserted, "duplicates": duplicates, "message_id": message_id,
        })

    def mark_rejected(self, batch_id: UUID, error: str) -> None:
        self._cur.execute(query("mark_rejected"), {"batch_id": batch_id, "error": error[:4000]})


class PostgresSinkStore:
    """The sink's state in Postgres, through ``pool`` (the process-wide pool of the deployable)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    @contextlib.contextmanager
    def transaction(self) -> Iterator[BatchTransaction]:
        """A transaction: committed when the block ends, rolled back (writing nothing) if it raises."""
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield BatchTransaction(cur)
        except psycopg.Error as exc:
            raise errors.SinkStoreError(f"sink transaction failed: {exc}", operation="apply") from exc

    def get(self, batch_id: UUID) -> models.StagedBatch | None:
        """A staged batch as it is now (not locked)."""
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                return _batch(cur.execute(query("get_batch"), {"batch_id": batch_id}).fetchone())
        except psycopg.Error as exc:
            raise errors.SinkStoreError(f"reading batch {batch_id} failed: {exc}", operation="get") from exc
