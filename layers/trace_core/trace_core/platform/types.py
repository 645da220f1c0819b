"""The shapes of the platform declaration: pure, frozen data that imports no AWS, Lite or CDK code.

A :class:`Platform` is built with :meth:`Platform.of`, which keys every part by
name and checks the whole once (:meth:`Platform.check`): names unique, every
queue a trigger or pool names declared, every service's pool declared.
Readers get mappings by name (``PLATFORM.functions["sink"]``).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Mapping
from typing import Literal, TypeVar

from trace_core.platform import errors

HttpMethod = Literal["ANY", "GET", "POST", "PUT", "PATCH", "DELETE"]
Auth = Literal["iam", "none"]
Egress = Literal["none", "rpc", "delivery"]

# functions/<name>/handler.py defines lambda_handler.
HANDLER = "handler.lambda_handler"


@dataclasses.dataclass(frozen=True)
class Queue:
    """An SQS queue (a pgqueue queue under Lite) with its dead-letter queue.

    A message received ``max_receives`` times without being deleted moves to ``dlq``.
    """

    name: str
    max_receives: int = 5

    @property
    def dlq(self) -> str:
        return f"{self.name}-dlq"


@dataclasses.dataclass(frozen=True)
class Bucket:
    """An S3 bucket; ``setting`` is the Settings field that holds its physical name (``datasets_bucket``)."""

    key: str
    setting: str


@dataclasses.dataclass(frozen=True)
class HttpRoute:
    """A route of the HTTP API (API Gateway HTTP API, payload format 2.0)."""

    method: HttpMethod
    path: str
    auth: Auth = "iam"


@dataclasses.dataclass(frozen=True)
class Http:
    """Trigger: the function serves these routes of the HTTP API."""

    routes: tuple[HttpRoute, ...]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Trigger: an EventBridge schedule every ``every_minutes``; a missed tick is not retried.

    Under Lite, schedules run every ``TRACE_HOST_TICK_SECONDS`` instead (time is compressed),
    never more often than ``local_floor_seconds``; ``wake_on_outbox`` also runs the function as
    soon as an outbox row commits.
    """

    every_minutes: int = 1
    wake_on_outbox: bool = False
    local_floor_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class QueueSource:
    """Trigger: an SQS event source on ``queue``, batches of up to ``batch_size`` messages.

    With ``partial_batch_response`` the function returns ``batchItemFailures`` and only
    those messages come back (Lambda's ``ReportBatchItemFailures``).
    """

    queue: str
    batch_size: int = 10
    max_batching_window_seconds: int = 5
    max_concurrency: int = 5
    partial_batch_response: bool = True


Trigger = Http | Schedule | QueueSource


@dataclasses.dataclass(frozen=True)
class Function:
    """A Lambda function: ``functions/<name>/handler.py`` (``handler``), its trigger and its settings.

    ``settings`` are the names of the :class:`trace_core.settings.Settings` fields it reads, and the
    only ones its environment carries. ``publishes`` are the queues it sends to; ``rpc_egress``
    puts it on the path to JSON-RPC providers on the internet.
    """

    name: str
    description: str
    timeout_seconds: int
    trigger: Trigger
    settings: tuple[str, ...]
    handler: str = HANDLER
    publishes: tuple[str, ...] = ()
    rpc_egress: bool = False


@dataclasses.dataclass(frozen=True)
class WorkerPool:
    """Workers that take wake-ups from ``queue`` and run exactly the operators named in ``operators``."""

    name: str
    queue: str
    operators: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Service:
    """A long-running container (Fargate on AWS, a process or thread under Lite).

    ``command`` is its entry point; ``image`` the ``services/<image>/Dockerfile`` it runs from;
    ``pool`` the worker pool it runs (None: not a worker); ``routes`` the HTTP API routes it
    serves; ``egress`` which internet path it needs; ``buckets`` the buckets a worker reads,
    writes and deletes in (by key); ``settings`` as for :class:`Function`.
    """

    name: str
    description: str
    command: tuple[str, ...]
    image: str
    settings: tuple[str, ...]
    pool: str | None = None
    routes: tuple[HttpRoute, ...] = ()
    egress: Egress = "none"
    buckets: tuple[str, ...] = ()


_Named = TypeVar("_Named", Queue, Bucket, Function, WorkerPool, Service)


def _by_name(kind: str, items: Iterable[_Named]) -> Mapping[str, _Named]:
    found: dict[str, _Named] = {}
    for item in items:
        name = item.key if isinstance(item, Bucket) else item.name
        if name in found:
            raise errors.DeclarationError(
                f"the platform declares {kind} {name!r} twice", kind=kind, name=name,
                fix="give each one its own name in trace_core/platform/declaration.py",
            )
        found[name] = item
    return types.MappingProxyType(found)


@dataclasses.dataclass(frozen=True)
class Platform:
    """The whole deployment: functions, services, worker pools, queues and buckets, each by name."""

    functions: Mapping[str, Function]
    services: Mapping[str, Service]
    worker_pools: Mapping[str, WorkerPool]
    queues: Mapping[str, Queue]
    buckets: Mapping[str, Bucket]

    @classmethod
    def of(
        cls,
        *,
        functions: Iterable[Function],
        services: Iterable[Service],
        worker_pools: Iterable[WorkerPool],
        queues: Iterable[Queue],
        buckets: Iterable[Bucket],
    ) -> Platform:
        """Key each part by name and check the whole (raises DeclarationError)."""
        platform = cls(
            functions=_by_name("function", functions),
            services=_by_name("service", services),
            worker_pools=_by_name("worker pool", worker_pools),
            queues=_by_name("queue", queues),
            buckets=_by_name("bucket", buckets),
        )
        platform.check()
        return platform

    def extended(
        self,
        *,
        functions: Iterable[Function] = (),
        services: Iterable[Service] = (),
        worker_pools: Iterable[WorkerPool] = (),
        queues: Iterable[Queue] = (),
        buckets: Iterable[Bucket] = (),
    ) -> Platform:
        """This platform with more parts (a new function or queue is one more entry)."""
        return Platform.of(
            functions=[*self.functions.values(), *functions],
            services=[*self.services.values(), *services],
            worker_pools=[*self.worker_pools.values(), *worker_pools],
            queues=[*self.queues.values(), *queues],
            buckets=[*self.buckets.values(), *buckets],
        )

    def check(self) -> None:
        """Every queue named by a trigger, a publisher or a pool is declared; every service's pool too."""
        for function in self.functions.values():
            named = list(function.publishes)
            if isinstance(function.trigger, QueueSource):
                named.append(function.trigger.queue)
            for queue in named:
                self._require("queue", queue, self.queues, f"function {function.name}")
        for pool in self.worker_pools.values():
            self._require("queue", pool.queue, self.queues, f"worker pool {pool.name}")
            if not pool.operators or len(set(pool.operators)) != len(pool.operators):
                raise errors.DeclarationError(
                    f"worker pool {pool.name!r} must name each of its operators once, and at least one",
                    kind="worker pool", name=pool.name, fix="list the operators it runs in operators=(...)",
                )
        for service in self.services.values():
            if service.pool is not None:
                self._require("worker pool", service.pool, self.worker_pools, f"service {service.name}")
            for bucket in service.buckets:
                self._require("bucket", bucket, self.buckets, f"service {service.name}")
        deployables = [*self.functions, *self.services]
        if len(set(deployables)) != len(deployables):
            raise errors.DeclarationError(
                "a function and a service share a name (both name their logs and metrics)",
                kind="deployable", name=sorted({d for d in deployables if deployables.count(d) > 1})[0],
                fix="rename one of them",
            )

    @staticmethod
    def _require(kind: str, name: str, known: Mapping[str, object], where: str) -> None:
        if name not in known:
            raise errors.DeclarationError(
                f"{where} names {kind} {name!r}, which the platform does not declare (known: {', '.join(known)})",
                kind=kind, name=name, fix=f"declare the {kind} or correct the name",
            )

    # ------------------------------------------------------------ derived views
    def scheduled(self) -> Mapping[str, Schedule]:
        """Functions run on a schedule, with their schedule."""
        return {n: f.trigger for n, f in self.functions.items() if isinstance(f.trigger, Schedule)}

    def queue_sources(self) -> Mapping[str, QueueSource]:
        """Functions fed by a queue, with their event source."""
        return {n: f.trigger for n, f in self.functions.items() if isinstance(f.trigger, QueueSource)}

    def http_functions(self) -> Mapping[str, Http]:
        """Functions behind the HTTP API, with their routes."""
        return {n: f.trigger for n, f in self.functions.items() if isinstance(f.trigger, Http)}

    def settings_of(self, deployable: str) -> tuple[str, ...]:
        """The settings a function or service reads (KeyError names the known deployables)."""
        if deployable in self.functions:
            return self.functions[deployable].settings
        if deployable in self.services:
            return self.services[deployable].settings
        raise KeyError(f"no deployable {deployable!r}: expected one of {sorted([*self.functions, *self.services])}")
