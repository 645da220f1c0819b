"""The audit log port: one row per Query Service request, accepted or rejected (one INSERT).

The row says who asked (principal, token id, org), what they could see (the
granted versions), what they asked (SQL text and its sha256), what was decided
and why, and what it cost (rows, bytes, duration). Writing it is part of
answering: if the row cannot be written, the query's result is not returned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from typing import Any, Literal, Protocol

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from trace_core.db import queries

Decision = Literal["allowed", "denied", "error"]
# Longer SQL is cut in the row (its hash covers the whole text); the request cap is higher than this anyway.
MAX_SQL_TEXT = 100_000


def sql_hash(sql: str) -> str:
    # surrogatepass: a lone surrogate (legal in JSON) must still hash, not fail the audit.
    return hashlib.sha256(sql.encode("utf-8", "surrogatepass")).hexdigest()


def storable(value: Any) -> Any:
    """``value`` with every string Postgres can store: NUL as ``\\u0000``, lone surrogates as ``\\udXXX``.

    ``text`` cannot hold NUL, ``jsonb`` refuses ``\\u0000`` and UTF-8 cannot encode a lone surrogate;
    any of them in attacker-controlled text (SQL, a JSON key, a JWT header) used to fail the INSERT
    and so lose the row. Dict keys are escaped too; the row's ``sql_hash`` covers the text as sent.
    """
    if isinstance(value, str):
        if value.isascii() and "\x00" not in value:
            return value
        return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable(v) for v in value]
    return value


@dataclasses.dataclass
class AuditRecord:
    """Filled in as the request progresses; written once at the end."""

    query_id: uuid.UUID
    action: str
    principal: str = "anonymous"
    org_id: uuid.UUID | None = None
    token_id: str | None = None
    decision: Decision = "error"
    reason: str | None = None
    status_code: int = 500
    sql_text: str | None = None
    granted_versions: list[str] = dataclasses.field(default_factory=list)
    rows: int | None = None
    bytes: int | None = None
    duration_ms: float = 0.0
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        return {
            "principal": storable(self.principal), "org_id": self.org_id, "action": self.action,
            "token_id": storable(self.token_id), "decision": self.decision, "reason": storable(self.reason),
            "detail": Jsonb(storable(self.detail)), "query_id": self.query_id, "status_code": self.status_code,
            "sql_hash": sql_hash(self.sql_text) if self.sql_text is not None else None,
            "sql_text": storable(self.sql_text[:MAX_SQL_TEXT]) if self.sql_text is not None else None,
            "granted_versions": storable(self.granted_versions), "rows": self.rows, "bytes": self.bytes,
            "duration_ms": self.duration_ms,
        }


class AuditLog(Protocol):
    def write(self, record: AuditRecord) -> None:
        """Persist ``record``; raise if it cannot be persisted."""


class PostgresAuditLog:
    """AuditLog over ``state.audit_log``."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def write(self, record: AuditRecord) -> None:
        with self._pool.connection() as conn:
            conn.execute(queries.load("trace_core.query.service")["insert_audit"], record.params())
