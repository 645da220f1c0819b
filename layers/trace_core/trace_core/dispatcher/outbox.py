"""The outbox drainer: publishes pending wake-ups through a QueueDriver, at least once.

Rows are written by the core in the same transaction as the state change they
announce. The drainer locks a batch of due rows (SKIP LOCKED, so several
drainers share the work), publishes them grouped by queue, and marks them
published in the same transaction. If it dies after publishing but before
committing, the rows stay pending and are published again: consumers treat
messages as wake-ups and tolerate duplicates (invariant 1). When a driver
accepts part of a queue's rows (``PublishError`` with ``indexes``), only the
rejected ones stay pending.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trace_core.dispatcher import queries, rows, tasks
from trace_core.queue import base
from trace_core.queue import errors as queue_errors

log = logging.getLogger(__name__)


def drain(conn: psycopg.Connection[Any], driver: base.QueueDriver, *, batch_size: int = 100) -> int:
    """Publish one batch of due pending rows; returns how many were published and marked.

    A queue whose publish fails keeps its rows pending with ``last_error`` and a
    growing delay; the other queues of the batch are still published.
    """
    params = {"batch_size": rows.check_int("batch_size", batch_size, 1, tasks.MAX_BATCH)}
    published: list[int] = []
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        by_queue: dict[str, list[rows.Row]] = defaultdict(list)
        for row in cur.execute(queries.get("outbox_pending"), params).fetchall():
            by_queue[row["queue"]].append(row)
        for queue, items in by_queue.items():
            ids = [item["outbox_id"] for item in items]
            try:
                driver.publish(queue, [item["payload"] for item in items])
            except Exception as exc:  # noqa: BLE001 - any driver failure: keep the rows, retry later
                rejected = _rejected(exc, ids)
                kept = set(rejected)
                log.warning("outbox publish to %s failed for %d of %d rows: %s", queue, len(rejected), len(ids), exc)
                cur.execute(queries.get("outbox_failed"),
                            {"ids": rejected, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                published.extend(i for i in ids if i not in kept)
                continue
            published.extend(ids)
        if published:
            cur.execute(queries.get("outbox_published"), {"ids": published})
    return len(published)


def _rejected(exc: Exception, ids: list[int]) -> list[int]:
    """The ids a failed publish did not get out: those it names by index, else all of them."""
    indexes = exc.details.get("indexes") if isinstance(exc, queue_errors.PublishError) else None
    if not isinstance(indexes, list):
        return ids
    return [ids[i] for i in indexes]


def drain_all(
    conn: psycopg.Connection[Any],
    driver: base.QueueDriver,
    *,
    batch_size: int = 100,
    max_batches: int = 50,
    until: float | None = None,
) -> int:
    """Drain batch after batch until one is not full, ``max_batches`` ran, or ``time.monotonic()``
    passed ``until`` (checked after each batch: one always runs); returns the total published."""
    total = 0
    for _ in range(max_batches):
        published = drain(conn, driver, batch_size=batch_size)
        total += published
        if published < batch_size or (until is not None and time.monotonic() >= until):
            break
    return total


def oldest_pending_age_seconds(conn: psycopg.Connection[Any]) -> float:
    """Age of the oldest due wake-up not yet published (0 when none): the outbox-age alarm's metric."""
    row = conn.execute(queries.get("outbox_oldest_pending_age")).fetchone()
    conn.commit()
    if row is None:
        return 0.0
    value = row["age"] if isinstance(row, dict) else row[0]
    return float(value or 0.0)
