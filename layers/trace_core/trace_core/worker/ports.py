"""The ports a worker builds for its operators from its own settings, and each attempt's context.

Built once per worker and shared by its attempts (each thread-safe): the
datasets bucket's client and the HTTP pool behind RPC clients cost more to
build than a short task's own work (a boto3 client parses botocore's service
models, ~50 ms; an httpx client builds an SSL context with the CA bundle,
~10 ms; both under the GIL). Each is built on first need, so a worker whose
operators declare none of them never builds it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from trace_core import aws
from trace_core.chain import rpc
from trace_core.datasets import objectstore
from trace_core.dispatcher import models
from trace_core.settings import Settings
from trace_core.worker import client as client_mod
from trace_core.worker import errors, operators

if TYPE_CHECKING:
    from trace_core.udf import functions

RPC_TIMEOUT_SECONDS = 30.0


class WorkerPorts:
    """What a worker can give its operators; :meth:`context` hands an attempt the ports its operator declared."""

    def __init__(self, settings: Settings, dispatcher: client_mod.DispatcherClient | None = None) -> None:
        """``dispatcher`` issues the attempts' task tokens (port ``query_token``); without it none can be declared."""
        self._settings = settings
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._store: objectstore.ObjectStore | None = None
        self._http: httpx.Client | None = None
        self._functions: functions.FunctionRunner | None = None

    def context(self, lease: models.Lease, operator: operators.Operator) -> operators.OperatorContext:
        """The context of the attempt ``lease`` of a task run by ``operator``."""
        return operators.OperatorContext(
            operator=lease.task.operator, task_id=lease.task.task_id, payload=lease.task.payload,
            attempt=lease.attempt, ports=self.for_attempt(lease, operator.ports),
        )

    def for_attempt(self, lease: models.Lease, declared: frozenset[str]) -> operators.Ports:
        """The ports in ``declared``, for the attempt ``lease``."""
        return operators.Ports(
            object_store=self._object_store() if "object_store" in declared else None,
            rpc_client=self._rpc_client if "rpc" in declared else None,
            query_token=self._query_token(lease) if "query_token" in declared else None,
            functions=self._function_runner() if "functions" in declared else None,
        )

    def close(self) -> None:
        """Stop what the ports started (user-function instances)."""
        with self._lock:
            runner, self._functions = self._functions, None
        if runner is not None:
            runner.close()

    def _query_token(self, lease: models.Lease) -> Callable[[], str | None]:
        dispatcher = self._dispatcher
        if dispatcher is None:
            raise errors.WorkerError(
                f"operator {lease.task.operator!r} declares the port 'query_token' but this worker has no "
                "dispatcher client to issue task tokens", operator=lease.task.operator, port="query_token",
            )
        return lambda: dispatcher.task_token(lease, self._settings)

    def _object_store(self) -> objectstore.ObjectStore:
        with self._lock:
            if self._store is None:
                self._store = objectstore.S3ObjectStore(aws.s3_client(self._settings), self._settings.datasets_bucket)
            return self._store

    def _function_runner(self) -> functions.FunctionRunner:
        with self._lock:
            if self._functions is None:
                from trace_core.db import conninfo, pool
                from trace_core.udf import functions, invoker, registry

                store = objectstore.S3ObjectStore(aws.s3_client(self._settings), self._settings.bundles_bucket)
                db = pool.get(conninfo.resolve(self._settings), max_size=self._settings.db_pool_max)
                self._functions = functions.FunctionRunner(registry.PostgresBundleRegistry(db), store,
                                                           invoker.LiteInvoker())
            return self._functions

    def _rpc_client(self, url: str) -> rpc.RpcClient:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=RPC_TIMEOUT_SECONDS)
            return rpc.RpcClient(url, client=self._http)
