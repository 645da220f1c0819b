"""Chain sync errors."""

from __future__ import annotations

from trace_core.errors import TraceError


class ChainSyncError(TraceError):
    """Root of chain sync errors."""


class SpecError(ChainSyncError):
    """The job spec is invalid. ``field`` is the dotted path of the first bad field."""


class JobNotFoundError(ChainSyncError):
    """No chain_sync job has that name."""
