"""DirectClient: the DispatcherClient that calls :mod:`trace_core.dispatcher.tasks` over a Postgres pool.

Each batch is one transaction; each item inside it runs in its own savepoint
(the core's ``conn.transaction()`` nests), so an item that the fence rejects
rolls back alone and the batch commits once. Items are handled in task-id
order, the order the core locks rows in, so concurrent batches cannot deadlock.
With a pgqueue driver on the same database (:func:`for_driver`), a completion
batch also acks its wake-ups in that transaction, and a claim the wake-ups it
spent (those whose task it did not claim): a commit less each, and a wake-up
disappears exactly when its work is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from trace_core.dispatcher import errors, models, tasks
from trace_core.queue import base, pgqueue
from trace_core.settings import Settings
from trace_core.worker import client

log = logging.getLogger(__name__)

AckIn = Callable[[psycopg.Connection[Any], Sequence[base.Message]], None]


def for_driver(pool: ConnectionPool, driver: base.QueueDriver) -> DirectClient:
    """The worker's client over ``pool``; it acks wake-ups itself when ``driver`` is pgqueue on the same database."""
    if isinstance(driver, pgqueue.PgQueueDriver) and driver.same_database(pool):
        return DirectClient(pool, ack_in=driver.ack_in)
    return DirectClient(pool)


class DirectClient:
    """DispatcherClient over ``pool`` (a psycopg pool whose connections use ``dict_row``)."""

    def __init__(self, pool: ConnectionPool, *, ack_in: AckIn | None = None) -> None:
        self._pool = pool
        self._ack_in = ack_in
        self.acks_messages = ack_in is not None

    def claim_next(
        self, *, worker_id: str, operators: Sequence[str], queue: str, lease_seconds: int, limit: int,
        wakeups: Mapping[UUID, Sequence[base.Message]] | None = None,
    ) -> list[models.Lease]:
        with self._pool.connection() as conn, conn.transaction():
            leases = tasks.claim_next(
                conn, worker_id=worker_id, operators=list(operators), queue=queue,
                lease_seconds=lease_seconds, limit=limit,
            )
            if self._ack_in is not None and wakeups:
                claimed = {lease.task.task_id for lease in leases}
                self._ack_in(conn, [m for task_id, ms in wakeups.items() if task_id not in claimed for m in ms])
            return leases

    def heartbeat(
        self, leases: Sequence[models.Lease], *, lease_seconds: int
    ) -> dict[UUID, models.Lease | errors.DispatcherError]:
        beaten: dict[UUID, models.Lease | errors.DispatcherError] = {}
        with self._pool.connection() as conn, conn.transaction():
            for lease in sorted(leases, key=lambda item: item.task.task_id):
                task_id = lease.task.task_id
                try:
                    beaten[task_id] = tasks.heartbeat(
                        conn, task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                        lease_seconds=lease_seconds,
                    )
                except errors.DispatcherError as exc:
                    beaten[task_id] = exc
        return beaten

    def complete(self, items: Sequence[client.CompletionItem]) -> dict[UUID, client.Completed]:
        done: dict[UUID, client.Completed] = {}
        plain = sorted((i for i in items if i.on_success is None), key=lambda i: i.lease.task.task_id)
        hooked = sorted((i for i in items if i.on_success is not None), key=lambda i: i.lease.task.task_id)
        with self._pool.connection() as conn, conn.transaction():
            if plain:
                outcomes = tasks.complete_many(
                    conn,
                    [
                        models.Completion(
                            task_id=i.lease.task.task_id, attempt=i.lease.attempt,
                            lease_token=i.lease.lease_token, result=i.result,
                        )
                        for i in plain
                    ],
                )
                done.update((i.lease.task.task_id, outcome) for i, outcome in zip(plain, outcomes))
            for item in hooked:
                outcome = self._complete_hooked(conn, item)
                done[item.lease.task.task_id] = (
                    outcome if isinstance(outcome, errors.DispatcherError) else outcome.status
                )
            if self._ack_in is not None:
                self._ack_in(conn, [m for i in items for m in i.messages])
        return done

    def task_token(self, lease: models.Lease, settings: Settings) -> str | None:
        """The attempt's Query Service token carrying the grants its payload asks for (None if none)."""
        from trace_core.auth import issuing, keys  # only tasks that query need the auth stack

        with self._pool.connection() as conn:
            return issuing.task_token(conn, keys.from_settings(settings), issuer=settings.token_issuer,
                                      task_id=lease.task.task_id, attempt=lease.attempt,
                                      payload=lease.task.payload)

    def abandon(self, lease: models.Lease, reason: str) -> client.Outcome:
        with self._pool.connection() as conn:
            try:
                return tasks.abandon(
                    conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token, reason=reason
                )
            except errors.DispatcherError as exc:
                return exc

    @staticmethod
    def _complete_hooked(conn: psycopg.Connection[Any], item: client.CompletionItem) -> client.Outcome:
        lease = item.lease
        try:
            return tasks.complete(
                conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                result=item.result, on_success=item.on_success,
            )
        except errors.DispatcherError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - the operator's commit hook failed: the attempt failed
            log.warning("commit hook of task %s attempt %s failed: %s", lease.task.task_id, lease.attempt, exc)
            # A hook may know its failure is permanent (a conflicting second publication of a version).
            failure = models.Failure(error=f"commit hook failed: {type(exc).__name__}: {exc}"[:10_000],
                                     retryable=bool(getattr(exc, "retryable", True)))
            try:
                return tasks.complete(
                    conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token, result=failure
                )
            except errors.DispatcherError as fenced:
                return fenced
