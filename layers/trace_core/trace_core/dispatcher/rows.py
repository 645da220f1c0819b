"""Shared row plumbing of the core: lock-and-read snapshots, write transitions, check arguments."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from trace_core.dispatcher import errors, lifecycle, models, queries

Row = dict[str, Any]


@contextlib.contextmanager
def batch_transaction(conn: Connection[Any]) -> Iterator[None]:
    """The transaction of a batch operation: its own, or the caller's if one is open (no savepoint).

    For the operations whose only failures are raised before they write or are database errors,
    which abort the caller's transaction anyway: a savepoint would buy nothing and cost two round
    trips (the worker's claim and completion batches run inside its client's transaction).
    """
    if conn.info.transaction_status == TransactionStatus.INTRANS:
        yield
    else:
        with conn.transaction():
            yield


def snapshot(row: Row) -> lifecycle.Snapshot:
    return lifecycle.Snapshot(
        task=models.Task.from_row(row),
        live_token=row["live_token"],
        attempt_outcome=row["attempt_outcome"],
        attempt_error=row["attempt_error"],
        now=row["db_now"],
    )


def lock(cur: Cursor[Row], task_ids: Sequence[UUID]) -> dict[UUID, lifecycle.Snapshot]:
    """Lock the tasks' rows (id order) for the rest of the transaction and read them."""
    rows = cur.execute(queries.get("snapshots"), {"task_ids": list(task_ids)}).fetchall()
    return {row["task_id"]: snapshot(row) for row in rows}


def apply(cur: Cursor[Row], transitions: Iterable[lifecycle.Transition]) -> dict[UUID, models.Task]:
    """Write decided transitions (task, attempt outcome, dead record, wake-up) in one statement."""
    batch = [t.as_json() for t in transitions]
    if not batch:
        return {}
    rows = cur.execute(queries.get("apply_transitions"), {"transitions": Jsonb(batch)}).fetchall()
    return {row["task_id"]: models.Task.from_row(row) for row in rows}


def require(ok: bool, field: str, expected: str, value: object) -> None:
    """Raise InvalidTaskError naming ``field`` unless ``ok``."""
    if not ok:
        raise errors.InvalidTaskError(f"{field} must be {expected}, got {value!r}", field=field, expected=expected)


def check_int(field: str, value: object, low: int, high: int) -> int:
    require(
        isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
        field,
        f"an integer from {low} to {high}",
        value,
    )
    return value  # type: ignore[return-value]


def check_lease_seconds(value: object) -> int:
    return check_int("lease_seconds", value, 1, models.MAX_LEASE_SECONDS)


def check_uuid(field: str, value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        require(False, field, "a UUID", value)
        raise  # unreachable: require raised


def check_worker_id(value: object) -> str:
    require(isinstance(value, str) and 1 <= len(value) <= 200, "worker_id", "a string of 1 to 200 characters", value)
    return value  # type: ignore[return-value]
