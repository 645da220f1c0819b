"""Running a stored analytic: validate parameters, check the window, render, query, shape.

``run(name, params, query=..., coverage=...)`` is the use case the CLI, the demo and the
tests call. The caller passes the ports and owns them: the Lite CLI asks the running
stack's Query Service (:mod:`trace_core.lite.analytics` over
:func:`trace_core.analytics.service.service_ports`), the unit tests an in-memory DuckDB.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trace_core.analytics import catalog, ports, render, results, windows


def run(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    query: ports.QueryPort,
    coverage: ports.CoveragePort,
) -> results.AnalyticsResult:
    """Run the analytic ``name`` with ``params`` (JSON values or ``--param`` strings); exact result.

    Raises UnknownAnalyticError (listing the names), ParameterError (naming the parameter and
    listing all of them), WindowError (naming the synced block ranges) or QueryError.
    """
    analytic = catalog.get(name)
    parsed = analytic.parse(dict(params or {}))
    window = windows.resolve(
        analytic.relation, coverage.synced(analytic.relation), parsed.from_block, parsed.to_block
    )
    sql = render.render_template(analytic.template, analytic.sql_values(parsed, window))
    rows = query.query(sql)
    return analytic.shape(parsed, window, rows, sql)
