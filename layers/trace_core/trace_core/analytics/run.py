"""Running a stored analytic: validate parameters, check the window, render, query, shape.

``run(name, params)`` is the use case the CLI, the demo and the tests call. Without
``query``/``coverage`` it asks the running Lite stack's Query Service with a token
granting the analytic's one relation (see :mod:`trace_core.analytics.service`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from trace_core import settings as settings_mod
from trace_core.analytics import catalog, ports, render, results, windows


def run(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    query: ports.QueryPort | None = None,
    coverage: ports.CoveragePort | None = None,
    namespace: str | None = None,
    settings: settings_mod.Settings | None = None,
) -> results.AnalyticsResult:
    """Run the analytic ``name`` with ``params`` (JSON values or ``--param`` strings); exact result.

    Raises UnknownAnalyticError (listing the names), ParameterError (naming the parameter and
    listing all of them), WindowError (naming the synced block ranges) or QueryError.
    """
    analytic = catalog.get(name)
    parsed = analytic.parse(dict(params or {}))
    with contextlib.ExitStack() as stack:
        if query is None or coverage is None:
            # Imported here: the platform wiring (psycopg, httpx, auth) is only needed without given ports.
            from trace_core.analytics import service

            lite_query, lite_coverage = service.lite_ports(analytic.relation, namespace=namespace, settings=settings)
            stack.callback(lite_query.close)
            query, coverage = query or lite_query, coverage or lite_coverage
        window = windows.resolve(
            analytic.relation, coverage.synced(analytic.relation), parsed.from_block, parsed.to_block
        )
        sql = render.render_template(analytic.template, analytic.sql_values(parsed, window))
        rows = query.query(sql)
    return analytic.shape(parsed, window, rows, sql)
