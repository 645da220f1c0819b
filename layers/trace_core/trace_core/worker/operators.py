"""Operators by name: ``register("noop", fn)``; an operator is ``fn(ctx: OperatorContext) -> dict``.

An operator returns its outputs (a JSON object) to succeed, raises
:class:`~trace_core.worker.errors.OperatorError` (``retryable=False`` for a
permanent failure) or any other exception (retryable) to fail. Long operators
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
from collections.abc import Callable
from typing import Any

import psycopg

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


def noop(ctx: OperatorContext) -> dict[str, Any]:
    """Does nothing and succeeds: it exercises claim, heartbeat, complete and ack."""
    return {"noop": True, "attempt": ctx.attempt}


register("noop", noop)
