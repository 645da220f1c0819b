"""DirectClient: the DispatcherClient that calls :mod:`trace_core.dispatcher.tasks` over a Postgres pool.

Each batch is one transaction; each item inside it runs in its own savepoint
(the core's ``conn.transaction()`` nests), so an item that the fence rejects
rolls back alone and the batch commits once. Items are handled in task-id
order, the order the core locks rows in, so concurrent batches cannot deadlock.
With a pgqueue driver on the same database (:func:`for_driver`), a completion
batch also acks its wake-ups in that transaction, and a claim the wake-ups it
spent (those whose task it did not claim): a commit less each, and a wake-up
disappears exactly when its work is recorded.

A completion batch that fails as a whole for any reason but an unreachable
database (a value Postgres refuses, a bug) is split in halves until each part
commits or is one completion; a completion that still fails alone is recorded
as a failure of its task with the cause in ``last_error``, and if even that
fails its task gets the error as its outcome (its lease then runs out and the
reaper retries it). So one bad completion never holds up its neighbours, and
:meth:`DirectClient.complete` raises only for errors that may pass.
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
from trace_core.worker import client, operators

log = logging.getLogger(__name__)

# Errors that may pass (connection lost, pool exhausted, deadlock, serialization failure): the
# whole batch is retried later, as it is. Any other error is the batch's own: it is split.
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)

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
        """Record the batch in one transaction; if it fails as a whole, split it (see the module doc)."""
        try:
            return self._complete_batch(items)
        except TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - the batch's own failure: find the completion that causes it
            if len(items) == 1:
                return {items[0].lease.task.task_id: self._complete_refused(items[0], exc)}
            log.warning("completing %d task(s) in one transaction failed (%s: %s); splitting the batch",
                        len(items), type(exc).__name__, exc)
            half = len(items) // 2
            return {**self.complete(items[:half]), **self.complete(items[half:])}

    def _complete_refused(self, item: client.CompletionItem, exc: Exception) -> client.Completed:
        """The completion of ``item`` fails on its own: record the attempt as failed, with the cause."""
        lease = item.lease
        cause = f"{type(exc).__name__}: {exc}".strip()
        log.error("completion of task %s attempt %d cannot be recorded (%s); recording it as failed",
                  lease.task.task_id, lease.attempt, cause)
        # A success Postgres refuses would be refused again on retry; a refused failure keeps its retryability.
        retryable = isinstance(item.result, models.Failure) and item.result.retryable
        failure = operators.failure(f"completion could not be recorded: {cause}", retryable=retryable)
        try:
            return self._complete_batch([client.CompletionItem(lease, failure, None, item.messages)])[
                lease.task.task_id
            ]
        except TRANSIENT:
            raise
        except Exception as again:  # noqa: BLE001 - give up on this attempt: its lease runs out, the reaper retries
            log.error("recording the failure of task %s attempt %d failed too: %s", lease.task.task_id,
                      lease.attempt, again)
            return errors.DispatcherError(f"completion of task {lease.task.task_id} attempt {lease.attempt} "
                                          f"could not be recorded: {cause}", task_id=str(lease.task.task_id))

    def _complete_batch(self, items: Sequence[client.CompletionItem]) -> dict[UUID, client.Completed]:
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
            failure = operators.failure(f"commit hook failed: {type(exc).__name__}: {exc}",
                                        retryable=bool(getattr(exc, "retryable", True)))
            try:
                return tasks.complete(
                    conn, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token, result=failure
                )
            except errors.DispatcherError as fenced:
                return fenced
