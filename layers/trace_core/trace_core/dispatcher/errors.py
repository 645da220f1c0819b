"""Errors the dispatcher raises on purpose. Each carries structured fields for the HTTP mapping."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from trace_core import errors


class DispatcherError(errors.TraceError):
    """Root of the dispatcher's errors."""


class TaskNotFoundError(DispatcherError):
    """No task has this id."""

    def __init__(self, task_id: UUID | str) -> None:
        super().__init__(f"task {task_id} not found", task_id=str(task_id))
        self.task_id = str(task_id)


class InvalidTaskError(DispatcherError):
    """Bad input. ``field`` names it; ``expected`` says what would have been accepted."""

    def __init__(self, message: str, *, field: str, expected: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, expected=expected, **details)
        self.field = field
        self.expected = expected


class MalformedBodyError(DispatcherError):
    """The request body is not a JSON document the API reads (not UTF-8, not JSON, too deep, empty)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="body")


class BodyTooLargeError(DispatcherError):
    """The request body is larger than the API reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="body")


class UnsupportedMediaTypeError(DispatcherError):
    """The request body is declared as something other than JSON."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="content-type")


class NotClaimableError(DispatcherError):
    """The task is not queued, or not yet due, or already leased (``status``, ``current_attempt``)."""

    def __init__(self, message: str, *, task_id: UUID, status: str, current_attempt: int, **details: Any) -> None:
        super().__init__(message, task_id=str(task_id), status=status, current_attempt=current_attempt, **details)
        self.status = status
        self.current_attempt = current_attempt


class StaleAttemptError(DispatcherError):
    """The caller's attempt or lease token is not the live one (attempt fencing)."""

    def __init__(self, message: str, *, task_id: UUID, current_attempt: int, **details: Any) -> None:
        super().__init__(message, task_id=str(task_id), current_attempt=current_attempt, **details)
        self.current_attempt = current_attempt


class LeaseExpiredError(DispatcherError):
    """The caller's attempt was the live one but its lease ran out (or was reaped)."""

    def __init__(self, message: str, *, task_id: UUID, current_attempt: int, **details: Any) -> None:
        super().__init__(message, task_id=str(task_id), current_attempt=current_attempt, **details)
        self.current_attempt = current_attempt
