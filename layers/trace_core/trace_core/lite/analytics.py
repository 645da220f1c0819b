"""Stored analytics over the running Lite stack (`trace-lite up`): its Query Service, asked with a Lite user token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trace_core import errors
from trace_core.analytics import catalog, results, service
from trace_core.analytics import run as run_mod
from trace_core.lite import query, stack, state
from trace_core.settings import Settings


def _ports(
    relation: str, settings: Settings, *, namespace: str | None = None
) -> tuple[service.ServiceQuery | service.Unsynced, service.GrantCoverage]:
    """The analytics ports over the stack's Query Service, with a token granting ``relation``; close the query."""
    resolved = stack.settings_for(settings, state.read(settings.home))
    url = query.running_url(resolved)
    if not resolved.database_url:
        raise errors.ComponentError("no database: the Lite stack is not up and TRACE_DATABASE_URL is unset",
                                    component="postgres", fix="run `trace-lite up` first")
    with psycopg.connect(resolved.database_url, row_factory=dict_row) as conn:
        return service.service_ports(url, resolved, conn, relation, namespace=namespace)


def run(name: str, params: Mapping[str, Any], settings: Settings, *,
        namespace: str | None = None) -> results.AnalyticsResult:
    """Run the analytic ``name`` through the stack's Query Service (bad parameters fail before it is asked)."""
    analytic = catalog.get(name)
    analytic.parse(dict(params))
    query_port, coverage = _ports(analytic.relation, settings, namespace=namespace)
    try:
        return run_mod.run(name, params, query=query_port, coverage=coverage)
    finally:
        query_port.close()
