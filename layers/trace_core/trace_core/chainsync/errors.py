"""Chain sync errors."""

from __future__ import annotations

from trace_core.errors import TraceError


class ChainSyncError(TraceError):
    """Root of chain sync errors."""


class SpecError(ChainSyncError):
    """The job spec is invalid. ``field`` is the dotted path of the first bad field."""


class JobNotFoundError(ChainSyncError):
    """No chain_sync job has that name."""


class RpcUnreachableError(ChainSyncError):
    """An RPC URL of the pool did not answer. ``url`` is already redacted."""


class ChainIdMismatchError(ChainSyncError):
    """An RPC URL serves another chain than the spec's ``chain_id``. ``url`` is already redacted."""


class JobInFlightError(ChainSyncError):
    """The job still has range tasks queued or running; ``fix`` says how to let them finish."""
