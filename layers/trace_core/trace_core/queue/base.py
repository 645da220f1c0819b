"""The QueueDriver port, shared by the outbox drainer, workers, sinks and deliveries.

Messages are small JSON pointers (task_id, attempt, delivery id). Nothing may
depend on ordering or exactly-once delivery: a message can arrive twice, late,
or never (the reaper and the planner recover from the last case).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@dataclasses.dataclass(frozen=True)
class Message:
    """A received message. ``receipt`` identifies this delivery (SQS receipt handle, pgqueue lease);
    bodies SQS carried in one packed message share it (``message_id`` tells them apart).

    A body that is not a JSON object arrives as ``body == {}`` with the text as
    received in ``raw`` (so dead-lettering keeps it); ``raw`` is None otherwise.
    """

    queue: str
    message_id: str
    body: dict[str, Any]
    receipt: str
    receive_count: int
    raw: str | None = None


class QueueDriver(Protocol):
    def publish(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Send each body as one message (batched where the backend allows)."""

    def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: float = 1.0, visibility_seconds: int = 30
    ) -> list[Message]:
        """Long-poll up to ``wait_seconds`` for up to ``max_messages`` (never more); each stays invisible for
        ``visibility_seconds``."""

    def ack(self, messages: Sequence[Message]) -> None:
        """Delete delivered messages (a stale receipt is ignored, never an error)."""

    def extend(self, message: Message, visibility_seconds: int) -> None:
        """Keep a message invisible for ``visibility_seconds`` more (worker heartbeat)."""

    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a message to the queue's dead-letter store now (poison message)."""


@runtime_checkable
class Signals(Protocol):
    """Wake-ups that carry nothing, for queues whose consumers ask Postgres what is due.

    A worker pool's queue on pgqueue is one (decision 2302): a wake-up there says only "work may be
    due on this queue"; the worker claims due tasks from ``state.tasks`` itself, so a message row per
    task (insert, receive, ack) would be three writes that tell it nothing more. Signals may be lost
    or merged: a waiter wakes at least every ``timeout`` and asks again.
    """

    def signal_only(self, queue: str) -> bool:
        """True if ``queue`` carries signals, not messages (``receive`` is refused there)."""

    def signal_mark(self, queue: str) -> int:
        """A mark to wait from: take it before asking what is due, then wait with it."""

    def wait_for_signal(self, queue: str, mark: int, timeout: float) -> None:
        """Return once ``queue`` was signalled after ``mark`` was taken, or after ``timeout`` seconds."""
