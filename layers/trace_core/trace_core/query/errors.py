"""Errors of the query sandbox: the SQL gate's verdicts and the engine's outcomes.

The Query Service maps these to HTTP in one place. Every error carries its
structured fields in ``details`` (and as attributes) so callers never parse
messages.
"""

from __future__ import annotations

from typing import Literal, get_args

from trace_core import errors

# Why the gate refused a query. ``relation_not_granted`` is the one a caller answers
# with 403 (a valid relation the caller may not read); every other reason is a 400.
RejectReason = Literal[
    "too_long",  # over the character, token or node budget
    "too_deep",  # nested deeper than the budget (parentheses, subqueries, expressions)
    "syntax",  # not parseable, empty, or contains characters SQL has no use for
    "multiple_statements",  # more than one statement
    "not_select",  # a statement other than one read-only SELECT (DDL, DML, SET, COPY, ...)
    "forbidden_syntax",  # a construct outside the reviewed grammar (INTO, PIVOT, parameters, ...)
    "forbidden_function",  # a function outside the allowlist (file readers, settings, catalog, ...)
    "forbidden_relation",  # a name that can never be a relation: paths, URLs, qualified or system names
    "relation_not_granted",  # a plain relation name the caller was not granted
]
REJECT_REASONS: tuple[str, ...] = get_args(RejectReason)


class QueryError(errors.TraceError):
    """Root of the query sandbox's errors."""


class QueryRejectedError(QueryError):
    """The SQL gate refused the query.

    ``reason`` is a :data:`RejectReason`; ``node`` is the offending SQL fragment
    (regenerated, at most 200 characters) or ``None`` when the whole text is at fault.
    """

    def __init__(self, message: str, *, reason: RejectReason, node: str | None = None, **details: object) -> None:
        super().__init__(message, reason=reason, node=node, **details)
        self.reason: RejectReason = reason
        self.node = node


class InvalidRelationError(QueryError):
    """Trusted code named a relation or source the sandbox cannot attach (``relation``, ``expected``)."""


class InvalidLimitsError(QueryError):
    """Execution limits the engine cannot honour (``field``, ``expected``)."""


class QueryTimeoutError(QueryError):
    """The query ran past its wall-clock (or CPU) limit and was stopped (``timeout_s``)."""


class QueryMemoryError(QueryError):
    """The query ran past its memory limit and was stopped (``memory_mb``)."""


class QueryFailedError(QueryError):
    """The engine could not run the SQL: a binder, type or runtime error, or a refused statement (``kind``)."""


class QueryBusyError(QueryError):
    """No worker became free within the wait (``waited_s``); the caller may retry later."""


class EngineClosedError(QueryError):
    """The engine was closed, or never started."""
