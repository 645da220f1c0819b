"""The request pipeline: token -> body -> gate -> trusted attach -> execute -> shape -> audit.

:meth:`QueryService.handle` is the whole use case behind both endpoints; the
HTTP layer only passes the Authorization header and body in and maps the
outcome or error out. Exactly one audit row is written per call, whatever
happens, and a result is only returned once its row is written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from trace_core import errors as trace_errors
from trace_core.auth import errors as auth_errors
from trace_core.auth import keys, tokens
from trace_core.auth import models as auth_models
from trace_core.query.service import admission as admission_mod
from trace_core.query.service import attempts, audit, errors, grants, results, sandbox, statuses, wire
from trace_core.query.service import breaker as breaker_mod

logger = logging.getLogger(__name__)

Endpoint = Literal["query", "task-query"]
AUDIENCES: dict[str, str] = {"query": tokens.USER_AUDIENCE, "task-query": tokens.TASK_AUDIENCE}


@dataclasses.dataclass(frozen=True)
class Limits:
    timeout_s: float
    memory_mb: int
    inline_max_bytes: int
    max_rows: int
    export_max_bytes: int


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the HTTP layer sends: a JSON body, or an Arrow IPC body with headers."""

    query_id: uuid.UUID
    media_type: str
    body: bytes
    headers: dict[str, str]


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        raise auth_errors.TokenInvalidError("an Authorization: Bearer <token> header is required", problem="missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise auth_errors.TokenInvalidError("the Authorization header must be 'Bearer <token>'", problem="malformed")
    return token.strip()


class QueryService:
    """Answers queries for holders of capability tokens. Thread-safe; one per process."""

    def __init__(
        self,
        *,
        keys: keys.KeyStore,
        issuer: str,
        sandbox: sandbox.Sandbox,
        resolver: grants.Resolver,
        audit_log: audit.AuditLog,
        exporter: results.ResultsExporter,
        attempts: attempts.TaskAttempts,
        limits: Limits,
        admission: admission_mod.Admission | None = None,
        breaker: breaker_mod.CrashBreaker | None = None,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._sandbox = sandbox
        self._resolver = resolver
        self._audit = audit_log
        self._exporter = exporter
        self._attempts = attempts
        self.limits = limits
        # Defaults for callers that wire the service by hand: no limit beyond the engine's own wait.
        self._admission = admission or admission_mod.Admission(
            slots=64, per_principal=64, queued_per_principal=0, max_wait_s=limits.timeout_s, run_s=limits.timeout_s)
        self._breaker = breaker or breaker_mod.CrashBreaker(crashes=3, window_s=60.0, cooldown_s=300.0)

    def close(self) -> None:
        """Stop the sandbox's worker processes."""
        self._sandbox.close()

    def handle(self, endpoint: Endpoint, *, authorization: str | None, body: bytes) -> Outcome:
        """Answer one request; raises the error to map (its ``details`` carry ``query_id``)."""
        started = time.perf_counter()
        record = audit.AuditRecord(query_id=uuid.uuid4(), action=f"POST /v1/{endpoint}")
        try:
            outcome = self._answer(endpoint, authorization, body, record, started)
            record.decision, record.status_code = "allowed", 200
            return outcome
        except BaseException as exc:
            status = statuses.classify(exc)
            record.decision, record.status_code = status.decision, status.http
            record.reason = f"{status.code}: {exc}"[:2000]
            if isinstance(exc, trace_errors.TraceError):
                exc.details.setdefault("query_id", str(record.query_id))
            if status.http >= 500:
                # A traceback only for the unexpected; known outages are one line.
                logger.error("query %s failed: %s", record.query_id, exc,
                             exc_info=exc if status.code == "internal" else None)
            if isinstance(exc, Exception) and not isinstance(exc, trace_errors.TraceError):
                # A bug, not a verdict: the client gets "internal" and the query id, the log gets the rest.
                raise errors.QueryServiceError("internal error", query_id=str(record.query_id)) from exc
            raise
        finally:
            record.duration_ms = (time.perf_counter() - started) * 1000
            self._write_audit(record)

    def _write_audit(self, record: audit.AuditRecord) -> None:
        """Write the row; if it cannot be written, log it and refuse with the query id (no result unaudited)."""
        try:
            self._audit.write(record)
        except Exception as exc:
            # The log line is then the only trace of the request: it carries what the row would have.
            logger.error("query %s: the audit row could not be written (%s): %s", record.query_id, exc,
                         audit.storable({"principal": record.principal, "decision": record.decision,
                                         "status": record.status_code, "reason": record.reason,
                                         "sql_hash": audit.sql_hash(record.sql_text) if record.sql_text else None}))
            raise errors.AuditWriteError("the request could not be audited, so it was not answered; retry",
                                         query_id=str(record.query_id)) from exc

    def _answer(self, endpoint: Endpoint, authorization: str | None, body: bytes,
                record: audit.AuditRecord, started: float) -> Outcome:
        lap = _Laps(record.detail.setdefault("ms", {}))
        token = self._token(authorization, record)
        claims = tokens.verify(self._keys, token, audience=AUDIENCES[endpoint], issuer=self._issuer)
        record.principal, record.org_id, record.token_id = claims.principal, claims.org_id, claims.token_id
        record.granted_versions = claims.granted_versions
        self._breaker.check(claims.principal)  # before any work: a tripped principal costs nothing
        if claims.kind == auth_models.TASK:
            assert claims.task_id is not None and claims.attempt is not None
            self._attempts.check_live(claims.task_id, claims.attempt)
        lap("token")
        request = wire.parse_request(body)
        record.sql_text = request.sql
        granted = {g.relation: g for g in claims.grants}
        gated = self._sandbox.check(request.sql, relations=granted.keys())
        missing = sorted(gated.relations_used - granted.keys())
        if missing:  # the gate should have said so; never attach what was not granted
            raise errors.RelationNotGrantedError(f"relation {missing[0]!r} is not granted to this token",
                                                 relation=missing[0], granted=sorted(granted))
        record.detail["relations"] = sorted(gated.relations_used)
        lap("gate")
        relations = self._resolver.resolve([granted[name] for name in sorted(gated.relations_used)])
        lap("attach")
        cap = min(request.max_rows or self.limits.max_rows, self.limits.max_rows)
        # Inline: one byte over the cap is enough to know the result does not fit.
        byte_cap = self.limits.export_max_bytes if request.export else self.limits.inline_max_bytes + 1
        result = self._execute(claims.principal, gated, relations, record, sandbox.ExecLimits(
            timeout_s=self.limits.timeout_s, memory_mb=self.limits.memory_mb, max_rows=cap, max_result_bytes=byte_cap))
        lap("execute")
        if result.worker_ms is not None:
            record.detail["ms"]["worker"] = result.worker_ms
        table = result.table
        record.rows, record.bytes = table.num_rows, table.nbytes
        # Cut short before max_rows rows means the byte cap did it.
        if not request.export and (table.nbytes > self.limits.inline_max_bytes
                                   or (result.truncated and table.num_rows < cap)):
            raise errors.ResultTooLargeError(
                f"the result is over the {self.limits.inline_max_bytes}-byte inline cap: "
                "ask for export (\"export\": true) or fewer rows",
                limit=self.limits.inline_max_bytes,
            )
        outcome = self._shape(request, claims, record, result, started)
        lap("shape")
        return outcome

    def _execute(self, principal: str, gated: sandbox.GatedSql, relations: Mapping[str, sandbox.RelationFiles],
                 record: audit.AuditRecord, limits: sandbox.ExecLimits) -> sandbox.ResultSet:
        """Run under a fair share of the workers; count crashes towards the principal's circuit breaker."""
        queued = time.perf_counter()
        with self._admission.slot(principal):
            # Beside "ms" (whose phases add up to the request): time spent waiting for a fair slot.
            record.detail["queued_ms"] = round((time.perf_counter() - queued) * 1000, 3)
            try:
                return self._sandbox.execute(gated, relations, limits)
            except errors.QueryFailedError as exc:
                if exc.details.get("kind") == "crash" and self._breaker.record_crash(principal):
                    record.detail["breaker"] = "opened"
                    logger.warning("query %s: %s crashed the engine too often; refused for %gs",
                                   record.query_id, principal, self._breaker.cooldown_s)
                raise

    def _token(self, authorization: str | None, record: audit.AuditRecord) -> str:
        token = bearer(authorization)
        header = tokens.unverified_header(token)
        # Attacker-controlled: kept for forensics only, never used to decide anything.
        record.detail["unverified"] = {k: str(header.get(k))[:64] for k in ("alg", "kid") if k in header}
        return token

    def _shape(self, request: wire.QueryRequest, claims: auth_models.Claims, record: audit.AuditRecord,
               result: sandbox.ResultSet, started: float) -> Outcome:
        table = result.table
        headers = {"X-Trace-Query-Id": str(record.query_id), "X-Trace-Row-Count": str(table.num_rows),
                   "X-Trace-Truncated": str(result.truncated).lower()}
        export: dict[str, Any] | None = None
        if request.export:
            exported = self._exporter.export(table, org_id=claims.org_id, query_id=record.query_id)
            record.detail["export_key"] = exported.key
            export = {"url": exported.url, "bucket": exported.bucket, "key": exported.key,
                      "expires_at": exported.expires_at.isoformat(), "bytes": exported.bytes}
        elif request.format == "arrow":
            return Outcome(record.query_id, wire.ARROW_MEDIA_TYPE, results.arrow_ipc(table), headers)
        body = {
            "query_id": str(record.query_id),
            "columns": results.columns(table),
            "rows": None if export else results.json_rows(table),
            "row_count": table.num_rows,
            "truncated": result.truncated,
            "bytes": table.nbytes,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "export": export,
        }
        return Outcome(record.query_id, "application/json", _json(body), headers)


class _Laps:
    """Milliseconds per phase, into the audit row's detail (so overhead is measurable in production)."""

    def __init__(self, into: dict[str, float]) -> None:
        self._into = into
        self._at = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self._into[phase] = round((now - self._at) * 1000, 3)
        self._at = now


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
