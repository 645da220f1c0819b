"""The worker's port to the dispatcher: batch-shaped, errors returned per item.

Batches let the direct adapter do one transaction per batch (the throughput
lever), and per-item errors keep one fenced-off task from failing its
neighbours. Adapters: :mod:`trace_core.worker.direct` (the core over a
Postgres pool). An HTTP adapter to the dispatcher API would implement the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol
from uuid import UUID

from trace_core.dispatcher import errors, models
from trace_core.queue import base
from trace_core.settings import Settings
from trace_core.worker import operators

Outcome = models.Task | errors.DispatcherError
Completed = models.Status | errors.DispatcherError


@dataclasses.dataclass(frozen=True)
class CompletionItem:
    """One finished attempt to report: its lease, its result, the operator's commit hook (if any) and
    the wake-ups its worker holds for it."""

    lease: models.Lease
    result: models.Success | models.Failure
    on_success: operators.OnSuccess | None = None
    messages: Sequence[base.Message] = ()


class DispatcherClient(Protocol):
    #: True if :meth:`complete` also acks the items' wake-ups, in the transaction that records
    #: the outcomes, and :meth:`claim_next` the wake-ups it spent; otherwise the worker acks them.
    acks_messages: bool

    def claim_next(
        self, *, worker_id: str, operators: Sequence[str], queue: str, lease_seconds: int, limit: int,
        wakeups: Mapping[UUID, Sequence[base.Message]] | None = None,
    ) -> list[models.Lease]:
        """Lease up to ``limit`` due tasks of ``queue`` with one of ``operators``, in one statement.

        With :attr:`acks_messages`, the ``wakeups`` (task id -> its wake-ups) whose task was not
        claimed here are spent: they are acked in the claim's transaction."""

    def heartbeat(
        self, leases: Sequence[models.Lease], *, lease_seconds: int
    ) -> dict[UUID, models.Lease | errors.DispatcherError]:
        """Extend each lease; per task the extended lease or the fence error (lease lost)."""

    def complete(self, items: Sequence[CompletionItem]) -> dict[UUID, Completed]:
        """Report finished attempts (fenced); per task its status afterwards or the error that refused it.

        One item the dispatcher cannot store never fails its neighbours: it is recorded as a failure of
        its own task (cause in ``last_error``) or answered with an error. Raises only when nothing could
        be recorded for a reason that may pass (the database unreachable): the caller retries the batch."""

    def task_token(self, lease: models.Lease, settings: Settings) -> str | None:
        """A Query Service task token for the attempt (grants from ``payload["grants"]``), or None."""

    def abandon(self, lease: models.Lease, reason: str) -> Outcome:
        """Give a lease back: the task is retried at once by someone else."""
