"""Running a stored analytic: validate parameters, check the window, render, query, shape.

``run(name, params)`` is the use case the CLI, the demo and the tests call. Its
ports default to the running Lite stack (the Query Service over HTTP and the
visible versions in Postgres, see :mod:`trace_core.analytics.service`); pass
``query``/``coverage`` to run elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trace_core.analytics import catalog, ports, render, results, windows


def run(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    query: ports.QueryPort | None = None,
    coverage: ports.CoveragePort | None = None,
) -> results.AnalyticsResult:
    """Run the analytic ``name`` with ``params`` and return its exact result.

    Raises UnknownAnalyticError (listing the names), ParameterError (naming the parameter
    and listing all of them), WindowError (naming the synced block ranges) or QueryError.
    """
    analytic = catalog.get(name)
    parsed = analytic.parse(dict(params or {}))
    if query is None or coverage is None:
        from trace_core.analytics import service

        default_query, default_coverage = service.lite_ports()
        query = query or default_query
        coverage = coverage or default_coverage
    window = windows.resolve(
        analytic.relation, coverage.synced(analytic.relation),
        getattr(parsed, "from_block", None), getattr(parsed, "to_block", None),
    )
    sql = render.render_template(analytic.template, analytic.sql_values(parsed, window))
    rows = query.query(sql)
    return analytic.shape(parsed, window, rows, sql)
