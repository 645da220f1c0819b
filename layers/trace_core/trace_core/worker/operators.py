"""The operator contract: an :class:`Operator` is a function ``fn(ctx: OperatorContext) -> dict`` and the
ports it declares.

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

An operator sees its task through a narrow context: the payload, the attempt,
the task id, and only the ports it declares (:data:`PORTS`), which the worker
builds from its own settings. Asking for a port it did not declare is an error.

An operator that must publish something only if its attempt wins (a dataset
commit) sets ``ctx.on_success = hook``: ``hook(conn, task, outputs)`` runs in
the completion's transaction, after the attempt fence passed.

Which operators a worker runs is its :class:`~trace_core.worker.registry.Registry`.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import psycopg
from pydantic import ValidationError

from trace_core.dispatcher import models
from trace_core.worker import errors

if TYPE_CHECKING:
    from trace_core.chain import rpc
    from trace_core.datasets import objectstore
    from trace_core.udf import functions

_P = TypeVar("_P")
OnSuccess = Callable[[psycopg.Connection[Any], models.Task, dict[str, Any]], None]

#: What an operator may declare. object_store: the datasets bucket; rpc: JSON-RPC clients over the worker's
#: shared HTTP pool (``ctx.rpc_client(url)``); query_token: the attempt's Query Service task token;
#: functions: the worker's runner of user-function bundles (warm instances shared by its attempts).
PORTS = frozenset({"object_store", "rpc", "query_token", "functions"})


@dataclasses.dataclass(frozen=True)
class Ports:
    """The ports one attempt gets: those its operator declared, the others None."""

    object_store: objectstore.ObjectStore | None = None
    rpc_client: Callable[[str], rpc.RpcClient] | None = None
    query_token: Callable[[], str | None] | None = None
    functions: functions.FunctionRunner | None = None


@dataclasses.dataclass
class OperatorContext:
    """What an operator gets: its task id, payload and attempt, its declared ports, a heartbeat and a cancel flag."""

    operator: str
    task_id: UUID
    payload: dict[str, Any]
    attempt: int
    ports: Ports = dataclasses.field(default_factory=Ports)
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)
    on_success: OnSuccess | None = None
    _heartbeat: Callable[[], None] = lambda: None

    def heartbeat(self) -> None:
        """Extend the lease now. Raises (and sets ``cancelled``) if the lease was lost."""
        self._heartbeat()

    @property
    def object_store(self) -> objectstore.ObjectStore:
        """The datasets bucket (port ``object_store``)."""
        return self._port("object_store", self.ports.object_store)

    def rpc_client(self, url: str) -> rpc.RpcClient:
        """A JSON-RPC client for ``url`` over the worker's shared HTTP pool (port ``rpc``); no need to close it."""
        return self._port("rpc", self.ports.rpc_client)(url)

    def query_token(self) -> str | None:
        """A short-lived token for the Query Service's ``POST /v1/task-query`` (port ``query_token``), valid
        while this attempt is live, granting the dataset versions the payload asks for (``payload["grants"]``:
        a list of ``{dataset, relation?, from_block?, to_block?}``), pinned to what is visible now; None if none."""
        return self._port("query_token", self.ports.query_token)()

    @property
    def functions(self) -> functions.FunctionRunner:
        """The worker's runner of user-function bundles (port ``functions``)."""
        return self._port("functions", self.ports.functions)

    def _port(self, name: str, port: _P | None) -> _P:
        if port is None:
            raise errors.WorkerError(
                f"operator {self.operator!r} did not declare the port {name!r}", operator=self.operator, port=name,
                fix=f"declare it: Operator(fn, ports={{{name!r}}})",
            )
        return port


OperatorFn = Callable[[OperatorContext], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Operator:
    """An operator function and what it needs from its worker: ports (see :data:`PORTS`) and whether it runs
    Cryo (the worker then sets up its allocator and Cryo's threads before starting)."""

    fn: OperatorFn
    ports: frozenset[str] = frozenset()
    runs_cryo: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "ports", frozenset(self.ports))
        unknown = sorted(self.ports - PORTS)
        if unknown:
            raise errors.WorkerError(
                f"unknown port(s) {', '.join(map(repr, unknown))} (ports: {', '.join(sorted(PORTS))})",
                field="ports", ports=unknown,
            )


MAX_ERROR_CHARS = 10_000


def run(fn: OperatorFn, ctx: OperatorContext) -> models.Success | models.Failure:
    """Run ``fn`` on ``ctx``; its outputs, or why the attempt failed (never raises an Exception)."""
    try:
        outputs = fn(ctx)
    except errors.OperatorError as exc:
        return failure(exc.message or type(exc).__name__, retryable=exc.retryable)
    except Exception as exc:  # noqa: BLE001 - any other failure of the operator is retryable
        return failure(_describe(exc), retryable=True)
    if not isinstance(outputs, dict):
        return failure(f"operator {ctx.operator} returned {type(outputs).__name__}, expected a dict",
                       retryable=False)
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


NOOP = Operator(noop)
