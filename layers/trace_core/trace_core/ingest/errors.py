"""Errors of the cryo_ingest operator. ``retryable`` says whether another attempt can help."""

from __future__ import annotations

from trace_core import errors


class IngestError(errors.TraceError):
    """Root of ingest errors."""

    retryable = True


class InvalidIngestRequestError(IngestError):
    """The task payload is malformed. ``field`` names it (dotted path), ``expected`` says what fits."""

    retryable = False


class UnsupportedDatasetError(IngestError):
    """The node cannot serve a requested dataset (e.g. ``traces`` on Monad, which has no ``trace_*``)."""

    retryable = False


class RangeNotAvailableError(IngestError):
    """The range ends past the node's head (``head``, ``range_end``); a later attempt may find it."""


class ChainChangedError(IngestError):
    """Block hashes changed while the range was extracted (a reorg): the output is discarded and retried."""


class ExtractError(IngestError):
    """Cryo failed or wrote something other than what was asked (``reason``)."""


class CryoUnavailableError(IngestError):
    """The ``cryo`` package cannot be imported on this platform."""

    retryable = False


class DerivationError(IngestError):
    """A derived dataset could not be computed from its source (``dataset``; e.g. a log that does not decode)."""

    retryable = False
