"""Issuing tokens from Postgres state: the Lite user's token, and a claimed task's token.

The dispatcher side of invariant 9: a worker that claimed a task whose payload
asks for dataset grants (``payload["grants"] = [{"dataset": "monad_local/blocks"}]``)
calls :func:`task_token` with its lease and passes the token to the operator,
which sends it to ``POST /v1/task-query``. The grants pin the versions visible
at claim time, so every query of the attempt sees the same data.

Connections must return dict rows (``row_factory=dict_row``), as the chain sync
queries these functions build on expect.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

import psycopg
from psycopg.rows import dict_row

from trace_core.auth import grants, keys, models, tokens
from trace_core.chainsync import jobs
from trace_core.db import queries

LITE_ORG_SLUG = "lite"
LITE_USER = "lite@localhost"


def _run(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(queries.load("trace_core.auth")[name], params)
        return cur.fetchall() if cur.description else []


def lite_principal(conn: psycopg.Connection[Any]) -> tuple[uuid.UUID, str]:
    """The Lite org (slug ``lite``) and its user ``lite@localhost``, created on first use."""
    with conn.transaction():
        org_id = _run(conn, "ensure_org", {"slug": LITE_ORG_SLUG, "name": "Trace Lite"})[0]["org_id"]
        _run(conn, "ensure_user", {"org_id": org_id, "email": LITE_USER, "role": "admin"})
    return org_id, LITE_USER


def visible_grants(conn: psycopg.Connection[Any], *, datasets: Collection[str] | None = None) -> list[models.Grant]:
    """One grant per dataset over every version chain sync made visible (optionally only ``datasets``)."""
    return grants.build(jobs.visible_versions(conn), datasets=datasets)


def lite_user_token(
    conn: psycopg.Connection[Any],
    store: keys.KeyStore,
    *,
    issuer: str,
    datasets: Collection[str] | None = None,
    ttl: dt.timedelta = dt.timedelta(minutes=10),
) -> str:
    """A user token for the Lite org granting every visible version (or those of ``datasets``)."""
    org_id, subject = lite_principal(conn)
    return tokens.mint_user_token(store, issuer=issuer, org_id=org_id, subject=subject,
                                  grants=visible_grants(conn, datasets=datasets), ttl=ttl)


def task_token(
    conn: psycopg.Connection[Any],
    store: keys.KeyStore,
    *,
    issuer: str,
    task_id: uuid.UUID,
    attempt: int,
    payload: dict[str, Any],
    ttl: dt.timedelta = tokens.DEFAULT_TASK_TTL,
) -> str | None:
    """The task token for a claimed attempt, or None when the payload asks for no grants.

    Call it right after ``dispatcher.tasks.claim`` with ``lease.task.task_id``, ``lease.attempt`` and
    ``lease.task.payload``. Raises GrantError naming the payload field if the request is malformed.
    """
    requests = grants.parse_requests(payload)
    if not requests:
        return None
    found = grants.for_requests(jobs.visible_versions(conn), requests)
    rows = _run(conn, "task_org", {"task_id": task_id})
    org_id = rows[0]["org_id"] if rows else None
    return tokens.mint_task_token(store, issuer=issuer, task_id=task_id, attempt=attempt, grants=found,
                                  org_id=org_id, ttl=ttl)
