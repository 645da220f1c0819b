"""The platform adapters of the analytics ports: the Query Service, and the grants of the token it is asked with.

An analytic reads one relation (``erc20_transfers`` or ``staking_events``). It gets
a user token granting exactly that dataset's visible versions, under that relation
name, and the same grants tell which blocks are synced: the window check and the
query see the same versions, even if chain sync commits more in between.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg

from trace_core import settings as settings_mod
from trace_core.analytics import errors, ports
from trace_core.auth import grants as auth_grants
from trace_core.auth import issuing, keys, models, tokens
from trace_core.chainsync import jobs
from trace_core.query.service import client as query_client
from trace_core.query.service import errors as service_errors

TOKEN_TTL = dt.timedelta(minutes=10)


class ServiceQuery:
    """:class:`~trace_core.analytics.ports.QueryPort` over ``POST /v1/query`` (Arrow answers, exact types)."""

    def __init__(self, client: query_client.QueryClient, *, max_rows: int | None = None) -> None:
        self._client = client
        self._max_rows = max_rows

    def query(self, sql: str) -> ports.Rows:
        try:
            try:
                answer = self._client.query(sql, max_rows=self._max_rows)
            except service_errors.QueryClientError as exc:
                if exc.details.get("code") != "result_too_large":
                    raise
                # Over the inline cap: the service writes it to the results bucket, we fetch it from there.
                answer = self._client.query(sql, max_rows=self._max_rows, export=True)
        except service_errors.QueryClientError as exc:
            raise errors.QueryError(
                f"the Query Service refused the analytic's query: {exc.message}",
                reason=exc.details.get("code"), status=exc.details.get("status"),
            ) from exc
        if answer.truncated:
            raise errors.QueryError(
                f"the analytic's result has more rows than the Query Service returns (query {answer.query_id}); "
                "ask for fewer samples or a shorter window", reason="truncated",
            )
        table = answer.table
        columns = [column.to_pylist() for column in table.columns]
        return ports.Rows(columns=tuple(table.column_names), rows=tuple(zip(*columns)) if columns else ())

    def close(self) -> None:
        self._client.close()


class GrantCoverage:
    """:class:`~trace_core.analytics.ports.CoveragePort` from the grants of the token the queries use."""

    def __init__(self, grants: Sequence[models.Grant]) -> None:
        self._grants = list(grants)

    def synced(self, relation: str) -> list[tuple[int, int]]:
        return [(v.range_start, v.range_end) for g in self._grants if g.relation == relation for v in g.versions]


def grants_for(
    conn: psycopg.Connection[Any], relation: str, *, namespace: str | None = None
) -> list[models.Grant]:
    """The grant of ``relation``'s visible versions, named ``relation`` (empty if nothing is synced).

    With several namespaces holding the dataset, ``namespace`` must say which one.
    ``conn`` must return dict rows (``row_factory=dict_row``), as the chain sync queries expect.
    """
    rows = jobs.visible_versions(conn)
    keys_found = sorted({str(r["dataset_key"]) for r in rows if str(r["dataset_key"]).split("/")[1] == relation})
    if namespace is not None:
        keys_found = [k for k in keys_found if k.split("/")[0] == namespace]
    if len(keys_found) > 1:
        raise errors.ParameterError(
            f"{relation} is synced in several namespaces ({', '.join(k.split('/')[0] for k in keys_found)}): "
            "choose one with --namespace", field="namespace", expected=[k.split("/")[0] for k in keys_found],
        )
    if not keys_found:
        return []
    return auth_grants.build(rows, datasets=keys_found, relations={keys_found[0]: relation})


class Unsynced:
    """The query port when nothing of the relation is synced: there is nothing to ask."""

    def __init__(self, relation: str) -> None:
        self._relation = relation

    def query(self, sql: str) -> ports.Rows:
        raise errors.WindowError(f"no synced blocks of {self._relation}", relation=self._relation, synced=[])

    def close(self) -> None:
        return None


def service_ports(
    base_url: str, settings: settings_mod.Settings, conn: psycopg.Connection[Any], relation: str, *,
    namespace: str | None = None, transport: Any = None,
) -> tuple[ServiceQuery | Unsynced, GrantCoverage]:
    """Ports that ask the Query Service at ``base_url`` with a Lite user token granting ``relation``.

    The Lite CLI wires them to the running stack (:mod:`trace_core.lite.analytics`).
    """
    grants = grants_for(conn, relation, namespace=namespace)
    org_id, subject = issuing.lite_principal(conn)
    conn.commit()
    coverage = GrantCoverage(grants)
    if not grants:
        # A token cannot grant nothing; run() reports the empty coverage before any query.
        return Unsynced(relation), coverage
    token = tokens.mint_user_token(keys.from_settings(settings), issuer=settings.token_issuer, org_id=org_id,
                                   subject=subject, grants=grants, ttl=TOKEN_TTL)
    client = query_client.QueryClient(base_url, token, timeout_s=settings.query_timeout_s + 30, transport=transport)
    return ServiceQuery(client), coverage

