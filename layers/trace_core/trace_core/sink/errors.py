"""Errors of the buffered dataset sink. Each names what was wrong and what would have been accepted."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from trace_core import errors


class SinkError(errors.TraceError):
    """Root of the sink's errors."""


class InvalidSinkInputError(SinkError):
    """Bad input. ``field`` is its path (``records[3].event_time``); ``expected`` says what fits."""

    def __init__(self, message: str, *, field: str, expected: str, **details: Any) -> None:
        super().__init__(message, field=field, expected=expected, **details)
        self.field = field
        self.expected = expected


class MalformedMessageError(InvalidSinkInputError):
    """A queue message is not a batch pointer (poison: it fails every receive and ends in the DLQ)."""


class InvalidBatchError(InvalidSinkInputError):
    """Some records of a batch are invalid; nothing of the batch is written.

    ``field``/``expected`` describe the first problem; ``problems`` lists up to
    :data:`trace_core.sink.core.MAX_PROBLEMS` of them as ``{"field", "expected", "message"}``.
    """

    def __init__(self, message: str, *, field: str, expected: str, problems: list[dict[str, str]],
                 **details: Any) -> None:
        super().__init__(message, field=field, expected=expected, problems=problems, **details)
        self.problems = problems


class BatchRejectedError(InvalidBatchError):
    """The sink refused a staged batch (``batch_id``): it wrote nothing and recorded why on the batch."""


class BatchNotFoundError(SinkError):
    """A message points at a batch that was never staged (poison)."""

    def __init__(self, batch_id: UUID) -> None:
        super().__init__(f"batch {batch_id} is not staged in state.sink_batches", batch_id=str(batch_id))
        self.batch_id = batch_id


class SinkStoreError(SinkError):
    """Postgres refused or failed a sink operation (``operation``); the transaction rolled back."""
