"""An in-memory QueueDriver for unit tests of consumers (host poller, worker loop).

It passes the same contract suite as pgqueue and SQS
(tests/integration/queue/test_contract.py), so it cannot drift from them.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from trace_core.queue import base, errors


@dataclasses.dataclass
class _Stored:
    message_id: str
    body: dict[str, Any]
    visible_at: float = 0.0
    receive_count: int = 0
    receipt: str | None = None


class MemoryQueueDriver:
    """QueueDriver held in this process. ``dead`` maps queue name to its dead messages (with reasons)."""

    def __init__(self, *, max_receives: int | Mapping[str, int] = 5) -> None:
        self._max_receives = max_receives
        self._queues: dict[str, list[_Stored]] = {}
        self.dead: dict[str, list[tuple[dict[str, Any], str]]] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()

    def publish(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        with self._cond:
            stored = self._queues.setdefault(queue, [])
            for body in bodies:
                stored.append(_Stored(str(next(self._ids)), dict(body)))
            self._cond.notify_all()

    def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: float = 1.0, visibility_seconds: int = 30
    ) -> list[base.Message]:
        if max_messages < 1:
            raise errors.QueueError(f"max_messages must be >= 1, got {max_messages}", field="max_messages")
        deadline = time.monotonic() + max(0.0, wait_seconds)
        with self._cond:
            while True:
                found = self._take(queue, max_messages, visibility_seconds)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._cond.wait(timeout=min(remaining, 0.05))

    def ack(self, messages: Sequence[base.Message]) -> None:
        with self._cond:
            for message in messages:
                stored = self._queues.get(message.queue, [])
                self._queues[message.queue] = [
                    s for s in stored if not (s.message_id == message.message_id and s.receipt == message.receipt)
                ]

    def extend(self, message: base.Message, visibility_seconds: int) -> None:
        with self._cond:
            for stored in self._queues.get(message.queue, []):
                if stored.message_id == message.message_id and stored.receipt == message.receipt:
                    stored.visible_at = time.monotonic() + visibility_seconds
            self._cond.notify_all()

    def dead_letter(self, message: base.Message, reason: str) -> None:
        with self._cond:
            stored = self._queues.get(message.queue, [])
            for item in stored:
                if item.message_id == message.message_id and item.receipt == message.receipt:
                    stored.remove(item)
                    self.dead.setdefault(message.queue, []).append((item.body, reason))
                    return

    def close(self) -> None:
        """Nothing to release."""

    def _take(self, queue: str, limit: int, visibility: int) -> list[base.Message]:
        now = time.monotonic()
        stored = self._queues.get(queue, [])
        maximum = self._max_receives if isinstance(self._max_receives, int) else self._max_receives.get(queue, 5)
        taken: list[base.Message] = []
        for item in list(stored):
            if len(taken) >= limit:
                break
            if item.visible_at > now:
                continue
            if item.receive_count >= maximum:
                stored.remove(item)
                self.dead.setdefault(queue, []).append((item.body, "max receives exceeded"))
                continue
            item.receive_count += 1
            item.receipt = uuid.uuid4().hex
            item.visible_at = now + visibility
            taken.append(base.Message(queue, item.message_id, dict(item.body), item.receipt, item.receive_count))
        return taken
