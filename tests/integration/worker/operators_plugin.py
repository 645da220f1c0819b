"""Test operators (``OPERATORS``): TRACE_OPERATOR_MODULES=tests.integration.worker.operators_plugin.

Each appends JSON lines to ``payload["log"]`` (if given) so a test can see every
execution across processes: start, end, cancelled, with pid and wall time.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from psycopg.types.json import Jsonb
from trace_core.worker import errors, operators


def record(ctx: operators.OperatorContext, event: str) -> None:
    path = ctx.payload.get("log")
    if not path:
        return
    line = json.dumps({"event": event, "task_id": str(ctx.task_id), "attempt": ctx.attempt,
                       "pid": os.getpid(), "t": time.time()})
    # O_APPEND writes of one short line are atomic: several processes can share the file.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def sleep(ctx: operators.OperatorContext) -> dict[str, Any]:
    """Sleeps ``payload["seconds"]``, stopping early (and failing) if the lease is lost or abandoned."""
    seconds = float(ctx.payload.get("seconds", 1.0))
    record(ctx, "start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.cancelled.wait(0.05):
            record(ctx, "cancelled")
            raise errors.OperatorError("cancelled: lease lost or abandoned")
    record(ctx, "end")
    return {"slept": seconds}


def flaky(ctx: operators.OperatorContext) -> dict[str, Any]:
    """Fails (retryably) until attempt ``payload["succeed_on"]``."""
    record(ctx, "start")
    if ctx.attempt < int(ctx.payload.get("succeed_on", 2)):
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


def fail(ctx: operators.OperatorContext) -> dict[str, Any]:
    """Fails for good (not retryable)."""
    raise errors.OperatorError("bad input: this task can never succeed", retryable=False)


def commit(ctx: operators.OperatorContext) -> dict[str, Any]:
    """Writes a marker row in its commit hook (runs only if the attempt's completion wins)."""

    def hook(conn: Any, task: Any, outputs: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO state.audit_log (principal, action, decision, detail) "
            "VALUES ('test', 'commit', 'allowed', %s)",
            (Jsonb({"task_id": str(task.task_id), "attempt": ctx.attempt}),),
        )

    ctx.on_success = hook
    return {"committed_by": ctx.attempt}


def poison(ctx: operators.OperatorContext) -> dict[str, Any]:
    """Returns or raises what Postgres cannot store, as ``payload["kind"]`` says (see POISONS)."""
    kind = ctx.payload["kind"]
    if kind == "raise_nul":
        raise errors.OperatorError("bad \x00 input", retryable=False)
    if kind == "hook_nul":
        def hook(conn: Any, task: Any, outputs: dict[str, Any]) -> None:
            raise errors.OperatorError("hook saw \x00", retryable=False)

        ctx.on_success = hook
        return {"hooked": True}
    return POISONS[kind]


#: Outputs Postgres refuses, by kind.
POISONS: dict[str, dict[str, Any]] = {
    "nan": {"x": float("nan")},
    "inf": {"x": [1, float("inf")]},
    "nul": {"s": "a\u0000b"},
    "surrogate": {"s": "\ud800"},
}

#: What ``echo`` returns, by ``payload["key"]`` (for in-process workers: a payload could not carry these).
ECHO: dict[str, Any] = {}


def echo(ctx: operators.OperatorContext) -> Any:
    """Returns ``ECHO[payload["key"]]``, whatever it is."""
    return ECHO[ctx.payload["key"]]


OPERATORS = {"sleep": sleep, "flaky": flaky, "fail": fail, "commit": commit, "poison": poison, "echo": echo}
