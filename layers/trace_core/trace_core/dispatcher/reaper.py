"""The lease reaper: expired leases become retries (with backoff and a wake-up) or dead tasks."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from trace_core.dispatcher import lifecycle, queries, rows, tasks


def reap(conn: psycopg.Connection[Any], *, limit: int = 100) -> int:
    """Reap up to ``limit`` expired leases in one transaction; returns how many were reaped.

    Each expired attempt ends with outcome ``expired``; its task is queued again
    with backoff and an outbox wake-up (published once due), or becomes dead
    with a ``dead_tasks`` row after its last attempt. Rows another reaper (or
    the owning worker) holds right now are skipped, so each expiry is reaped once.
    """
    params = {"limit": rows.check_int("limit", limit, 1, tasks.MAX_BATCH)}
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        expired = [rows.snapshot(row) for row in cur.execute(queries.get("expired_snapshots"), params).fetchall()]
        moved = rows.apply(cur, [lifecycle.after_expiry(s.task, tasks.jitter()) for s in expired])
        return len(moved)


def reap_all(conn: psycopg.Connection[Any], *, batch_size: int = 100, max_batches: int = 50) -> int:
    """Reap batch after batch until none is full (or ``max_batches``); returns the total reaped."""
    total = 0
    for _ in range(max_batches):
        reaped = reap(conn, limit=batch_size)
        total += reaped
        if reaped < batch_size:
            break
    return total
