"""The ``udf_invoke`` operator: a dispatcher task that runs one invocation of a registered bundle version.

Payload: ``{"bundle": "<name>", "version": <int> | null, "org": "<slug>" (default "lite"), "event": {...}}``.
Outputs: ``{"bundle", "version", "result"}`` (the handler's JSON, whatever its type), recorded by the
fenced completion like any task's. A failed invocation fails the attempt: the handler's own error (it
would throw again on the same event) for good; the sandbox's or runtime's (a timeout, a crash, a
response too large) retryably, as Lambda retries an asynchronous invocation. A payload that names no
bundle, or a bundle that is not registered or no longer passes the loader, fails for good, naming why.
"""

from __future__ import annotations

from typing import Any

from trace_core.udf import errors as udf_errors
from trace_core.worker import errors, operators

# Error types of the platform, not of the handler: the next attempt may well succeed.
TRANSIENT_PREFIXES = ("Sandbox.", "Runtime.", "Function.")


def udf_invoke(ctx: operators.OperatorContext) -> dict[str, Any]:
    payload = ctx.payload
    name, version, org, event = payload.get("bundle"), payload.get("version"), payload.get("org", "lite"), \
        payload.get("event", {})
    if not isinstance(name, str) or not name:
        raise errors.OperatorError("payload field bundle: expected the bundle's name", retryable=False)
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise errors.OperatorError("payload field version: expected an integer >= 1 or null (the latest)",
                                   retryable=False)
    if not isinstance(org, str):
        raise errors.OperatorError("payload field org: expected an org slug", retryable=False)
    try:
        found, outcome = ctx.functions.invoke(org, name, version, event)
    except (udf_errors.BundleNotFoundError, udf_errors.BundleRejectedError) as exc:
        raise errors.OperatorError(str(exc), retryable=False) from exc
    if not outcome.ok:
        error_type = outcome.error_type or "Unknown"
        raise errors.OperatorError(f"{found.name}@{found.version} failed: {error_type}: {outcome.error_message}",
                                   retryable=error_type.startswith(TRANSIENT_PREFIXES))
    return {"bundle": found.name, "version": found.version, "result": outcome.result}


OPERATOR = operators.Operator(udf_invoke, ports=frozenset({"functions"}))
