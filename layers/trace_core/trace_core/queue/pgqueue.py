"""pgqueue: a QueueDriver on Postgres tables (``state.queue_messages`` / ``state.queue_dead``).

Receives use ``FOR UPDATE SKIP LOCKED`` so concurrent consumers never get the
same delivery; visibility timeouts and max receives behave like SQS with a
redrive policy. ``LISTEN``/``NOTIFY`` only shortens the wait: a receive never
relies on it. A dead LISTEN connection must not silently delay pickup (the
pg-boss #850 failure, https://github.com/timgit/pg-boss/issues/850), so every
wait is bounded by ``poll_interval`` and the listener reconnects on its own.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from trace_core.db import pool as db_pool
from trace_core.db import queries
from trace_core.queue import base, errors, listener

log = logging.getLogger(__name__)

CHANNEL = "trace_queue"
LISTENER_APPLICATION = "trace-pgqueue-listener"
DEFAULT_MAX_RECEIVES = 5


def _queries() -> dict[str, Any]:
    return queries.load("trace_core.queue", "pgqueue.sql")


class PgQueueDriver:
    """QueueDriver on Postgres.

    ``pool_or_conninfo``: a psycopg pool (shared with the rest of the process)
    or a connection string (the driver then owns a small pool). ``max_receives``
    is per queue (a mapping) or for all queues (an int). ``poll_interval``
    bounds every wait, with or without notifications. ``listen=False`` turns
    LISTEN off (pure polling). ``signal_queues`` carry signals, not messages (:class:`base.Signals`):
    a publish there writes no row, only the NOTIFY, and ``receive`` is refused.
    """

    def __init__(
        self,
        pool_or_conninfo: ConnectionPool | str,
        *,
        max_receives: int | Mapping[str, int] = DEFAULT_MAX_RECEIVES,
        poll_interval: float = 1.0,
        listen: bool = True,
        signal_queues: Collection[str] = (),
    ) -> None:
        if isinstance(pool_or_conninfo, str):
            self._pool = db_pool.open_pool(pool_or_conninfo, max_size=4, name="trace-pgqueue",
                                           kwargs={"autocommit": True})
            self._owns_pool = True
        else:
            self._pool = pool_or_conninfo
            self._owns_pool = False
        conninfo = self._pool.conninfo
        self._conninfo: str = conninfo() if callable(conninfo) else conninfo
        self._max_receives = max_receives
        if poll_interval <= 0:
            raise errors.QueueError("poll_interval must be > 0 seconds", field="poll_interval")
        self.poll_interval = poll_interval
        self._listen = listen
        self._signal_queues = frozenset(signal_queues)
        self._cond = threading.Condition()
        self._generation: dict[str, int] = {}
        self._closed = threading.Event()
        self._listener: listener.Listener | None = None

    # ------------------------------------------------------------ QueueDriver
    def publish(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        if not bodies:
            return
        if queue in self._signal_queues:
            with self._pool.connection() as conn:
                conn.execute(_queries()["signal"], {"queue": queue, "channel": CHANNEL})
            self._wake(queue)
            return
        with self._pool.connection() as conn:
            conn.execute(
                _queries()["publish"],
                {"queue": queue, "bodies": Jsonb([dict(body) for body in bodies]), "channel": CHANNEL},
            )
        self._wake(queue)  # receivers in this process need not wait for the round trip

    def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: float = 1.0, visibility_seconds: int = 30
    ) -> list[base.Message]:
        if queue in self._signal_queues:
            raise errors.QueueError(
                f"queue {queue} carries signals, not messages: its consumers claim due tasks themselves",
                queue=queue, field="queue",
            )
        if max_messages < 1:
            raise errors.QueueError(f"max_messages must be >= 1, got {max_messages}", field="max_messages")
        if visibility_seconds < 0:
            raise errors.QueueError(
                f"visibility_seconds must be >= 0, got {visibility_seconds}", field="visibility_seconds"
            )
        self._ensure_listener()
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            with self._cond:
                seen = self._generation.get(queue, 0)
            messages, buried = self._fetch(queue, max_messages, visibility_seconds)
            if messages:
                return messages
            if buried:
                continue  # the picked rows were all poison: look again at once
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with self._cond:
                # Bounded: a notification we never get (dead listener, lost NOTIFY,
                # a message whose visibility just ran out) costs at most poll_interval.
                self._cond.wait_for(
                    functools.partial(self._woken, queue, seen), timeout=min(remaining, self.poll_interval)
                )
            if self._closed.is_set():
                return []

    def ack(self, messages: Sequence[base.Message]) -> None:
        if not messages:
            return
        with self._pool.connection() as conn:
            self.ack_in(conn, messages)

    def ack_in(self, conn: psycopg.Connection[Any], messages: Sequence[base.Message]) -> None:
        """Ack on ``conn``, inside whatever transaction it is in (commits and rolls back with it)."""
        if not messages:
            return
        ids, receipts = _ids_and_receipts(messages)
        conn.execute(_queries()["ack"], {"ids": ids, "receipts": receipts})

    def same_database(self, pool: ConnectionPool) -> bool:
        """True if ``pool`` connects where this driver's tables are (then :meth:`ack_in` may use it)."""
        conninfo = pool.conninfo
        return _where(conninfo() if callable(conninfo) else conninfo) == _where(self._conninfo)

    def extend(self, message: base.Message, visibility_seconds: int) -> None:
        if visibility_seconds < 0:
            raise errors.QueueError(
                f"visibility_seconds must be >= 0, got {visibility_seconds}", field="visibility_seconds"
            )
        ids, receipts = _ids_and_receipts([message])
        with self._pool.connection() as conn:
            conn.execute(
                _queries()["extend"], {"id": ids[0], "receipt": receipts[0], "visibility": visibility_seconds}
            )
        if visibility_seconds == 0:
            self._wake(message.queue)

    def dead_letter(self, message: base.Message, reason: str) -> None:
        ids, receipts = _ids_and_receipts([message])
        with self._pool.connection() as conn:
            conn.execute(_queries()["dead_letter"], {"id": ids[0], "receipt": receipts[0], "reason": reason})

    # ------------------------------------------------------------ Signals
    def signal_only(self, queue: str) -> bool:
        return queue in self._signal_queues

    def signal_mark(self, queue: str) -> int:
        self._ensure_listener()
        with self._cond:
            return self._generation.get(queue, 0)

    def wait_for_signal(self, queue: str, mark: int, timeout: float) -> None:
        if timeout <= 0 or self._closed.is_set():
            return
        with self._cond:
            self._cond.wait_for(functools.partial(self._woken, queue, mark), timeout=min(timeout, self.poll_interval))

    # ------------------------------------------------------------ inspection
    def depth(self, queue: str) -> dict[str, int]:
        """Messages waiting (``visible``) and received but not yet acked (``in_flight``)."""
        with self._pool.connection() as conn:
            row = conn.execute(_queries()["depth"], {"queue": queue}).fetchone()
        return {"visible": int(_col(row, 0, "visible")), "in_flight": int(_col(row, 1, "in_flight"))}

    def dead(self, queue: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The queue's dead messages, oldest first (body, receive_count, reason, died_at)."""
        with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=psycopg.rows.dict_row)
            return list(cur.execute(_queries()["dead"], {"queue": queue, "limit": limit}).fetchall())

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up (notifications arrive)."""
        return self._listener is not None and self._listener.listening

    @property
    def listener_pid(self) -> int | None:
        """The listener's backend pid (tests terminate it to prove the fallback)."""
        return self._listener.backend_pid if self._listener is not None else None

    def close(self) -> None:
        """Stop the listener and, if the driver made its pool, close it. Waiting receives return []."""
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if self._listener is not None:
            self._listener.close()
        if self._owns_pool:
            self._pool.close()

    # ------------------------------------------------------------ internals
    def _limit_for(self, queue: str) -> int:
        if isinstance(self._max_receives, int):
            return self._max_receives
        return self._max_receives.get(queue, DEFAULT_MAX_RECEIVES)

    def _fetch(self, queue: str, limit: int, visibility: int) -> tuple[list[base.Message], int]:
        with self._pool.connection() as conn, conn.transaction():
            # Read the visible messages in index order and stop at the limit: while the table
            # has no statistics (a fresh or young queue) the planner prefers a bitmap scan,
            # which reads and sorts every visible message on each receive (docs/decisions/0304).
            conn.execute("SET LOCAL enable_bitmapscan = off")
            rows = conn.execute(
                _queries()["receive"],
                {"queue": queue, "limit": limit, "max_receives": self._limit_for(queue), "visibility": visibility},
            ).fetchall()
        messages: list[base.Message] = []
        buried = 0
        for row in rows:
            if _col(row, 4, "buried"):
                buried += 1
                log.warning(
                    "pgqueue: message %s on %s moved to the dead table after %s receives",
                    _col(row, 0, "message_id"), queue, _col(row, 3, "receive_count"),
                )
                continue
            body = _col(row, 1, "body")
            raw = None
            if not isinstance(body, dict):
                log.warning("pgqueue: message %s on %s is not a JSON object", _col(row, 0, "message_id"), queue)
                raw, body = json.dumps(body), {}
            messages.append(
                base.Message(
                    queue=queue,
                    message_id=str(_col(row, 0, "message_id")),
                    body=body,
                    receipt=str(_col(row, 2, "receipt")),
                    receive_count=int(_col(row, 3, "receive_count")),
                    raw=raw,
                )
            )
        return messages, buried

    def _woken(self, queue: str, seen: int) -> bool:
        return self._generation.get(queue, 0) != seen or self._closed.is_set()

    def _wake(self, queue: str | None) -> None:
        with self._cond:
            if queue is None:
                for name in self._generation:
                    self._generation[name] += 1
            else:
                self._generation[queue] = self._generation.get(queue, 0) + 1
            self._cond.notify_all()

    def _ensure_listener(self) -> None:
        if not self._listen or self._closed.is_set():
            return
        with self._cond:
            if self._listener is None:
                self._listener = listener.Listener(
                    self._conninfo, CHANNEL, self._wake, application_name=LISTENER_APPLICATION,
                    connect=self._listener_connection, max_backoff=max(self.poll_interval, 1.0),
                )
                self._listener.start()

    def _listener_connection(self) -> psycopg.Connection[Any]:
        """The dedicated LISTEN connection (a seam: tests make it fail to keep the listener down)."""
        return psycopg.connect(
            self._conninfo, autocommit=True, application_name=LISTENER_APPLICATION, connect_timeout=5
        )


def _where(conninfo: str) -> dict[str, str]:
    """A connection string's target (the password is not part of it)."""
    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    parts.pop("password", None)
    return {k: str(v) for k, v in parts.items()}


def _col(row: Any, index: int, name: str) -> Any:
    """A column from a tuple row or a dict row (the shared pool uses dict_row)."""
    return row[name] if isinstance(row, dict) else row[index]


def _ids_and_receipts(messages: Sequence[base.Message]) -> tuple[list[int], list[uuid.UUID]]:
    ids: list[int] = []
    receipts: list[uuid.UUID] = []
    for message in messages:
        try:
            ids.append(int(message.message_id))
            receipts.append(uuid.UUID(message.receipt))
        except ValueError as exc:
            raise errors.QueueError(
                f"not a pgqueue delivery: message_id={message.message_id!r} receipt={message.receipt!r}",
                queue=message.queue,
                field="receipt",
            ) from exc
    return ids, receipts
