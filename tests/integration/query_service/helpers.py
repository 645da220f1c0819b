"""Helpers of the Query Service tests: grants from committed versions, tokens, audit rows."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
from trace_core.auth import grants as auth_grants
from trace_core.auth import keys, models, tokens
from trace_core.datasets import models as dataset_models
from trace_core.settings import Settings

ORG = uuid.UUID("00000000-0000-4000-8000-00000000a11c")


def grants_of(*versions: dataset_models.DatasetVersion) -> list[models.Grant]:
    return auth_grants.build([
        {"dataset_key": v.dataset_key, "dataset_uuid": v.dataset_uuid, "dataset_version": v.dataset_version,
         "storage_prefix": v.storage_prefix, "range_start": v.range_start, "range_end": v.range_end}
        for v in versions
    ])


def user_token(settings: Settings, grants: list[models.Grant], *, subject: str = "ada@example.com",
               **kw: Any) -> str:
    return tokens.mint_user_token(keys.from_settings(settings), issuer=settings.token_issuer, org_id=ORG,
                                  subject=subject, grants=grants, **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_row(conn: psycopg.Connection[Any], query_id: str | uuid.UUID) -> dict[str, Any]:
    rows = conn.execute("SELECT * FROM state.audit_log WHERE query_id = %s", (str(query_id),)).fetchall()
    assert len(rows) == 1, f"expected one audit row for {query_id}, found {len(rows)}"
    return rows[0]


def expired(settings: Settings, grants: list[models.Grant]) -> str:
    return user_token(settings, grants, ttl=dt.timedelta(minutes=1),
                      now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
