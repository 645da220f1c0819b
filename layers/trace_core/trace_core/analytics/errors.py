"""Errors of the stored analytics. Each carries what a user needs to fix the call."""

from __future__ import annotations

from trace_core import errors


class AnalyticsError(errors.TraceError):
    """Root of the analytics errors."""


class UnknownAnalyticError(AnalyticsError):
    """No analytic has this name. ``expected`` lists the names that exist."""


class ParameterError(AnalyticsError):
    """A parameter is unknown, missing or ill-typed. ``field`` names it; ``expected`` lists every parameter."""


class WindowError(AnalyticsError):
    """The block window is not inside the synced data. ``synced`` lists the synced ranges ``[start, end)``."""


class QueryError(AnalyticsError):
    """The Query Service refused or failed the analytic's query. ``reason`` is the service's."""


class ResultShapeError(AnalyticsError):
    """A query answered with columns or values the analytic did not expect (a template/schema mismatch)."""
