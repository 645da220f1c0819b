"""Errors of the worker wrapper and of operators."""

from __future__ import annotations

from typing import Any

from trace_core import errors


class WorkerError(errors.TraceError):
    """Root of the worker's errors."""


class UnknownOperatorError(WorkerError):
    """No operator is registered under ``operator``; ``known`` lists those that are."""


class OperatorError(WorkerError):
    """Raised by an operator to fail its attempt. ``retryable=False`` fails the task for good."""

    def __init__(self, message: str, *, retryable: bool = True, **details: Any) -> None:
        super().__init__(message, retryable=retryable, **details)
        self.retryable = retryable
