"""Reading a wake-up message: ``{"task_id": "<uuid>", "attempt": <int>}`` (written by the outbox).

Pure. Anything else is malformed: the worker leaves it unacked so it reaches the
dead-letter store after max receives, and nothing else waits for it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID


def task_id_of(body: dict[str, Any]) -> UUID | None:
    """The task a wake-up points at, or None if the body is not a wake-up."""
    value = body.get("task_id") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


def body_for(task_id: UUID, attempt: int = 0) -> dict[str, Any]:
    """The wake-up body for ``task_id`` (what the outbox writes), for tests and tools."""
    return {"task_id": str(task_id), "attempt": attempt}
