"""Errors of the Query Service itself (the sandbox's gate and engine errors live in ``trace_core.query.errors``)."""

from __future__ import annotations

from trace_core import errors


class QueryServiceError(errors.TraceError):
    """Root of Query Service errors."""


class BadQueryRequestError(QueryServiceError):
    """The request body is not a valid QueryRequest. ``field`` names the field, ``expected`` what fits."""


class BodyTimeoutError(BadQueryRequestError):
    """The request body did not arrive whole within the read timeout (``timeout_s``, ``received_bytes``)."""


class RelationNotGrantedError(QueryServiceError):
    """The SQL reads a relation the token does not grant (``relation``, ``granted``)."""


class ResultTooLargeError(QueryServiceError):
    """The result is over the inline cap and export was not requested (``bytes``, ``limit``)."""


class DatasetIntegrityError(QueryServiceError):
    """A granted version's manifest or files do not match the registry (``dataset_version``, ``key``, ``reason``)."""


class ExportError(QueryServiceError):
    """Writing the result to the results bucket failed (``key``)."""


# The sandbox's verdicts, as the service reports them. The engine adapter translates the
# sandbox's own errors into these at the boundary, so HTTP mapping depends on this module only.
class QueryRejectedError(QueryServiceError):
    """The SQL gate refused the query. ``reason`` is the gate's reason code (``relation_not_granted``: 403)."""

    def __init__(self, message: str, *, reason: str, **details: object) -> None:
        super().__init__(message, reason=reason, **details)
        self.reason = reason


class QueryTimeoutError(QueryServiceError):
    """The query ran past its wall-clock limit and was stopped (``timeout_s``)."""


class QueryMemoryError(QueryServiceError):
    """The query ran past its memory limit and was stopped (``memory_mb``)."""


class QueryFailedError(QueryServiceError):
    """The engine could not run the gated SQL. ``kind``: ``crash``/``start`` (the engine's fault),
    ``temp_limit`` (spill files over the limit), anything else: the user's SQL (binder, type, runtime)."""


class QueryBusyError(QueryServiceError):
    """Every sandbox worker stayed busy for the whole wait (``waited_s``); retry after ``retry_after_s``."""


class ConcurrencyLimitError(QueryServiceError):
    """The principal already has its most queries running and waiting (``retry_after_s``, ``running``, ``waiting``)."""


class CircuitOpenError(QueryServiceError):
    """The principal's queries kept crashing the engine; refused for a while (``retry_after_s``, ``crashes``)."""


class AuditWriteError(QueryServiceError):
    """The request's audit row could not be written, so nothing is returned (``query_id``)."""


class QueryClientError(QueryServiceError):
    """The Query Service answered an error (``status``, ``code``, ``query_id``), or could not be reached."""


class SandboxUnavailableError(QueryServiceError):
    """The query sandbox (``trace_core.query``) cannot be loaded in this installation (``reason``)."""
