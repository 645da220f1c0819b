"""Errors of the queue drivers. Backend errors are translated here, never leaked raw."""

from __future__ import annotations

from trace_core import errors


class QueueError(errors.TraceError):
    """A queue operation failed. ``queue`` names the queue."""


class QueueNotFoundError(QueueError):
    """The queue (or its dead-letter queue) does not exist. ``queue`` names it, ``fix`` says what to do."""


class PublishError(QueueError):
    """Some bodies were not published. ``failed`` lists the backend's reasons."""
