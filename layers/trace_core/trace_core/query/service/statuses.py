"""The one place that maps errors to HTTP: status, stable code and audit decision.

| error                                    | status | code                      | decision |
|------------------------------------------|--------|---------------------------|----------|
| token missing/invalid/expired/stale      | 401    | ``token_<problem>``       | denied   |
| body not sent whole within its timeout   | 408    | ``body_timeout``          | denied   |
| body is not a QueryRequest               | 400    | ``bad_request``           | denied   |
| gate rejection                           | 400    | the gate's reason         | denied   |
| relation not granted                     | 403    | ``relation_not_granted``  | denied   |
| wall-clock limit                         | 408    | ``timeout``               | error    |
| result over the inline cap, no export    | 413    | ``result_too_large``      | denied   |
| memory limit                             | 422    | ``memory_limit``          | error    |
| spill files over their limit             | 422    | ``temp_limit``            | error    |
| every sandbox worker busy for the wait   | 503    | ``busy``                  | error    |
| principal over its concurrency limits    | 429    | ``too_many_queries``      | denied   |
| principal's queries keep crashing        | 429    | ``circuit_open``          | denied   |
| the sandbox crashed on the query         | 500    | ``engine_failure``        | error    |
| SQL failed in the engine (binder, types) | 400    | ``query_failed``          | error    |
| export to the results bucket failed      | 502    | ``export_failed``         | error    |
| granted data does not match registry     | 500    | ``dataset_integrity``     | error    |
| signing keys cannot be read              | 503    | ``key_store_unavailable`` | error    |
| the sandbox cannot be loaded             | 503    | ``sandbox_unavailable``   | error    |
| the audit row cannot be written          | 503    | ``audit_unavailable``     | error    |
| anything else                            | 500    | ``internal``              | error    |
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from trace_core.auth import errors as auth_errors
from trace_core.query.service import errors

Decision = Literal["allowed", "denied", "error"]


@dataclasses.dataclass(frozen=True)
class Status:
    http: int
    code: str
    decision: Decision


def classify(exc: BaseException) -> Status:
    """Status, code and audit decision for ``exc``."""
    if isinstance(exc, auth_errors.TokenInvalidError):
        return Status(401, f"token_{exc.problem}", "denied")
    if isinstance(exc, errors.BodyTimeoutError):
        return Status(408, "body_timeout", "denied")
    if isinstance(exc, errors.BadQueryRequestError):
        return Status(400, "bad_request", "denied")
    if isinstance(exc, errors.RelationNotGrantedError):
        return Status(403, "relation_not_granted", "denied")
    if isinstance(exc, errors.QueryRejectedError):
        reason = str(exc.reason)
        return Status(403 if reason == "relation_not_granted" else 400, reason, "denied")
    if isinstance(exc, errors.QueryTimeoutError):
        return Status(408, "timeout", "error")
    if isinstance(exc, errors.ResultTooLargeError):
        return Status(413, "result_too_large", "denied")
    if isinstance(exc, errors.QueryMemoryError):
        return Status(422, "memory_limit", "error")
    if isinstance(exc, errors.QueryFailedError):
        kind = exc.details.get("kind")
        if kind in ("crash", "start"):
            return Status(500, "engine_failure", "error")
        if kind == "temp_limit":
            return Status(422, "temp_limit", "error")
        return Status(400, "query_failed", "error")
    if isinstance(exc, errors.QueryBusyError):
        return Status(503, "busy", "error")
    if isinstance(exc, errors.ConcurrencyLimitError):
        return Status(429, "too_many_queries", "denied")
    if isinstance(exc, errors.CircuitOpenError):
        return Status(429, "circuit_open", "denied")
    if isinstance(exc, errors.ExportError):
        return Status(502, "export_failed", "error")
    if isinstance(exc, errors.DatasetIntegrityError):
        return Status(500, "dataset_integrity", "error")
    if isinstance(exc, auth_errors.KeyStoreError):
        return Status(503, "key_store_unavailable", "error")
    if isinstance(exc, errors.SandboxUnavailableError):
        return Status(503, "sandbox_unavailable", "error")
    if isinstance(exc, errors.AuditWriteError):
        return Status(503, "audit_unavailable", "error")
    return Status(500, "internal", "error")


def headers(exc: BaseException, status: Status) -> dict[str, str] | None:
    """HTTP headers the refusal carries: the Bearer challenge on 401, Retry-After when we know when."""
    out: dict[str, str] = {}
    if status.http == 401:
        out["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    retry = exc.details.get("retry_after_s") if isinstance(exc, errors.QueryServiceError) else None
    if isinstance(retry, int) and retry > 0:
        out["Retry-After"] = str(retry)
    return out or None
