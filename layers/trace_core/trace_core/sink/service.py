"""The sink's two use cases: ``publish`` a batch (producer side) and ``consume`` one message (the Lambda).

``publish`` validates the records, stages them and writes the outbox pointer in
the caller's transaction; the outbox drainer sends the pointer to ``trace-sink``.
``consume`` applies the batch a message points at in one transaction:

- a message that is not a pointer, or points at no batch, raises (poison: it
  fails every receive until SQS moves it to the DLQ);
- a batch applied before is a no-op (duplicate messages, redrives);
- an invalid batch writes nothing to ``data``: the rejection is recorded on the
  batch and BatchRejectedError raised, so its message ends in the DLQ too;
- a valid batch inserts its rows with ``ON CONFLICT DO NOTHING`` and is marked
  applied, all in the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg

from trace_core import platform
from trace_core.sink import core, errors, models, store

QUEUE = platform.SINK_QUEUE  # the dataset-buffer queue the sink function drains


class BatchTransaction(Protocol):
    def lock(self, batch_id: UUID) -> models.StagedBatch | None: ...

    def insert(self, batch: models.StagedBatch, plan: core.Plan, *, message_id: str) -> int: ...

    def mark_applied(self, batch_id: UUID, *, inserted: int, duplicates: int, message_id: str) -> None: ...

    def mark_rejected(self, batch_id: UUID, error: str) -> None: ...


class SinkStore(Protocol):
    """The port ``consume`` needs (``store.PostgresSinkStore`` implements it)."""

    def transaction(self) -> contextlib.AbstractContextManager[BatchTransaction]: ...


def publish(
    conn: psycopg.Connection[Any],
    sink: str,
    records: Sequence[Any],
    *,
    org_id: UUID | None = None,
    task_id: UUID | None = None,
    attempt: int | None = None,
    queue: str = QUEUE,
) -> UUID:
    """Validate ``records`` for ``sink`` and stage them with their wake-up, in ``conn``'s transaction.

    Returns the batch id. Raises InvalidBatchError (naming the first bad field,
    e.g. ``records[2].event_time``) before writing anything. ``org_id`` is the
    trusted tenant of every row; ``task_id``/``attempt`` record the producing
    attempt (provenance, never part of a dedupe key). The caller commits.
    """
    plan = core.plan(sink, records)
    if (task_id is None) != (attempt is None):
        raise errors.InvalidSinkInputError(
            "attempt: task_id and attempt go together", field="attempt",
            expected="both task_id and attempt, or neither",
        )
    return store.stage(conn, plan, queue=queue, org_id=org_id, task_id=task_id, attempt=attempt)


def requeue(conn: psycopg.Connection[Any], batch_ids: Sequence[UUID], *, queue: str = QUEUE) -> list[UUID]:
    """Send a new pointer for each staged batch not yet applied (the replay after a repair); caller commits.

    Applied batches are skipped (their rows are there); unknown ids are ignored.
    Returns the ids requeued.
    """
    return store.requeue(conn, list(batch_ids), queue=queue)


def consume(sink_store: SinkStore, body: str, *, message_id: str) -> models.Applied:
    """Apply the batch one ``trace-sink`` message points at: all of its rows or none."""
    message = models.parse_message(body)
    rejected: errors.InvalidBatchError | None = None
    with sink_store.transaction() as tx:
        decision = core.decide(message, tx.lock(message.batch_id))
        batch = decision.batch
        if not decision.apply:
            return models.Applied(batch_id=batch.batch_id, sink=batch.sink, records=batch.record_count,
                                  inserted=0, duplicates=0, already_applied=True)
        try:
            plan = core.plan(batch.sink, batch.records)
        except errors.InvalidBatchError as exc:
            rejected = exc
            tx.mark_rejected(batch.batch_id, exc.message)
        else:
            inserted = tx.insert(batch, plan, message_id=message_id)
            duplicates = len(plan.rows) - inserted
            tx.mark_applied(batch.batch_id, inserted=inserted, duplicates=duplicates, message_id=message_id)
            return models.Applied(batch_id=batch.batch_id, sink=batch.sink, records=len(plan.rows),
                                  inserted=inserted, duplicates=duplicates)
    # Outside the block: the rejection is committed, and no data row was written.
    assert rejected is not None
    raise errors.BatchRejectedError(
        f"batch {batch.batch_id} ({batch.sink}) rejected, nothing written: {rejected.message}",
        field=rejected.field, expected=rejected.expected, problems=rejected.problems, batch_id=str(batch.batch_id),
    ) from rejected
