"""Operators by name: ``register("noop", fn)``; an operator is ``fn(ctx: OperatorContext) -> dict``.

An operator returns its outputs (a JSON object) to succeed, raises
:class:`~trace_core.worker.errors.OperatorError` (``retryable=False`` for a
permanent failure) or any other exception (retryable) to fail. :func:`run`
turns whatever it does into a result the dispatcher can store: outputs
Postgres would refuse (NaN or Infinity, a NUL character, a lone surrogate,
nesting deeper than 64, more than 256 KiB) fail that task for good with the
cause in ``last_error``, and an error text is made storable. Long operators
call ``ctx.heartbeat()`` now and then if they like (the worker heartbeats on a
timer anyway) and stop early when ``ctx.cancelled`` is set: the lease was lost
or the worker is abandoning it, and a completion would be rejected.

An operator that must publish something only if its attempt wins (a dataset
commit) sets ``ctx.on_success = hook``: ``hook(conn, task, outputs)`` runs in
the completion's transaction, after the attempt fence passed.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
import traceback
from collections.abc import Callable
from typing import Any

import psycopg
from pydantic import ValidationError

from trace_core.dispatcher import models
from trace_core.settings import Settings
from trace_core.worker import errors

OnSuccess = Callable[[psycopg.Connection[Any], models.Task, dict[str, Any]], None]


@dataclasses.dataclass
class OperatorContext:
    """What an operator gets: its task and attempt, settings, a heartbeat and a cancel flag."""

    task: models.Task
    attempt: int
    settings: Settings
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)
    on_success: OnSuccess | None = None
    _heartbeat: Callable[[], None] = lambda: None
    _query_token: Callable[[], str | None] = lambda: None

    @property
    def payload(self) -> dict[str, Any]:
        return self.task.payload

    def heartbeat(self) -> None:
        """Extend the lease now. Raises (and sets ``cancelled``) if the lease was lost."""
        self._heartbeat()

    def query_token(self) -> str | None:
        """A short-lived token for the Query Service's ``POST /v1/task-query``, valid while this attempt
        is live, granting the dataset versions the payload asks for (``payload["grants"]``: a list of
        ``{dataset, relation?, from_block?, to_block?}``), pinned to what is visible now; None if none."""
        return self._query_token()


Operator = Callable[[OperatorContext], dict[str, Any]]

_registry: dict[str, Operator] = {}
_lock = threading.Lock()


def register(name: str, fn: Operator, *, replace: bool = False) -> None:
    """Make ``fn`` run tasks whose operator is ``name``. Registering a name twice needs ``replace=True``."""
    with _lock:
        if name in _registry and _registry[name] is not fn and not replace:
            raise errors.WorkerError(
                f"operator {name!r} is already registered", field="operator", operator=name
            )
        _registry[name] = fn


# The platform's own operators: every worker can run them without configuration.
# Imported on first need (they import this module to register themselves).
PLATFORM_MODULES = ("trace_core.ingest.operator",)


def get(name: str) -> Operator:
    """The operator registered as ``name``, or UnknownOperatorError listing the known ones."""
    with _lock:
        missing = name not in _registry
    if missing:
        load_modules(",".join(PLATFORM_MODULES))
    with _lock:
        fn = _registry.get(name)
        if fn is None:
            known = sorted(_registry)
            raise errors.UnknownOperatorError(
                f"no operator {name!r} is registered in this worker (known: {', '.join(known) or 'none'})",
                operator=name,
                known=known,
                fix="import the module that registers it (TRACE_OPERATOR_MODULES=pkg.module)",
            )
        return fn


def names() -> list[str]:
    """Every operator this worker runs, the platform's own included.

    Workers claim tasks by these names, so the platform's modules are imported here (not only on the
    first :func:`get`): otherwise a fresh worker would list only ``noop`` and never claim their tasks.
    """
    load_modules(",".join(PLATFORM_MODULES))
    with _lock:
        return sorted(_registry)


def load_modules(spec: str) -> list[str]:
    """Import each module of a comma-separated list (each registers its operators on import)."""
    loaded = []
    for module in (part.strip() for part in spec.split(",")):
        if not module:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise errors.WorkerError(
                f"operator module {module!r} could not be imported: {exc}",
                field="TRACE_OPERATOR_MODULES",
                module=module,
            ) from exc
        loaded.append(module)
    return loaded


MAX_ERROR_CHARS = 10_000


def run(ctx: OperatorContext) -> models.Success | models.Failure:
    """Run the task's operator; its outputs, or why the attempt failed (never raises an Exception)."""
    name = ctx.task.operator
    try:
        outputs = get(name)(ctx)
    except errors.OperatorError as exc:
        return failure(exc.message or type(exc).__name__, retryable=exc.retryable)
    except Exception as exc:  # noqa: BLE001 - any other failure of the operator is retryable
        return failure(_describe(exc), retryable=True)
    if not isinstance(outputs, dict):
        return failure(f"operator {name} returned {type(outputs).__name__}, expected a dict", retryable=False)
    try:
        return models.Success(outputs=outputs)
    except ValidationError as exc:
        # Deterministic: the same input would return the same outputs, so retrying only burns attempts.
        return failure(f"output not storable: {_reason(exc)}", retryable=False)


def failure(error: str, *, retryable: bool) -> models.Failure:
    """A Failure carrying ``error`` as Postgres can store it: NUL and lone surrogates escaped, at most
    MAX_ERROR_CHARS characters, never empty."""
    text = error.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    return models.Failure(error=text[:MAX_ERROR_CHARS] or "failed without a message", retryable=retryable)


def _describe(exc: BaseException) -> str:
    """The exception's type, message and the last lines of its traceback."""
    tail = "".join(traceback.format_exception(exc)[-3:])
    try:
        return f"{type(exc).__name__}: {exc}\n{tail}"
    except Exception:  # noqa: BLE001 - its __str__ failed; format_exception says so in the tail
        return f"{type(exc).__name__}\n{tail}"


def _reason(exc: ValidationError) -> str:
    """What a model refused, without pydantic's "Value error, " prefix."""
    first = exc.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    return str(cause) if cause is not None else str(first["msg"])


def noop(ctx: OperatorContext) -> dict[str, Any]:
    """Does nothing and succeeds: it exercises claim, heartbeat, complete and ack."""
    return {"noop": True, "attempt": ctx.attempt}


register("noop", noop)
