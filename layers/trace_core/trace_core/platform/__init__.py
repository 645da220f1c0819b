"""The platform declaration: every deployable, queue and bucket of Trace, declared once.

``PLATFORM`` (a :class:`~trace_core.platform.types.Platform`) is the contract the
CDK app, the Lite host and the worker entry point are generated from:

- ``PLATFORM.functions[name]``: a Lambda function (``functions/<name>/handler.py``)
  with ``.trigger`` (``Http`` routes, a ``Schedule``, or a ``QueueSource`` with
  its batch size and partial-batch response), ``.timeout_seconds``,
  ``.settings`` (the Settings fields it reads: its whole environment) and
  ``.publishes`` (queues it sends to);
- ``PLATFORM.services[name]``: a long-running container (``query``, ``worker``,
  ``delivery``) with ``.command``, ``.image``, ``.settings``, ``.pool`` and ``.routes``;
- ``PLATFORM.worker_pools[name]``: ``.queue`` and ``.operators`` (the operator
  names its workers run, and only those); the ``chain`` pool runs
  ``cryo_ingest`` and ``noop`` on ``trace-tasks``;
- ``PLATFORM.queues[name]``: ``.max_receives`` and ``.dlq`` (its dead-letter queue);
- ``PLATFORM.buckets[key]``: ``.setting``, the Settings field holding its name.

Queue names for product code: ``TASK_QUEUE``, ``SINK_QUEUE``, ``DELIVERY_QUEUE``;
pool names ``CHAIN_POOL`` and ``DELIVERY_POOL``. Pure data: this package
imports nothing from ``lite``, ``cli`` or ``cdk``, opens nothing, reads no
environment. ``Platform.extended(...)`` builds a derived declaration (tests).
"""

from __future__ import annotations

from trace_core.platform.declaration import (
    CHAIN_POOL,
    DELIVERY_POOL,
    DELIVERY_QUEUE,
    PLATFORM,
    SINK_QUEUE,
    TASK_QUEUE,
)
from trace_core.platform.errors import DeclarationError
from trace_core.platform.types import (
    Bucket,
    Function,
    Http,
    HttpRoute,
    Platform,
    Queue,
    QueueSource,
    Schedule,
    Service,
    Trigger,
    WorkerPool,
)

__all__ = [
    "CHAIN_POOL",
    "DELIVERY_POOL",
    "DELIVERY_QUEUE",
    "PLATFORM",
    "SINK_QUEUE",
    "TASK_QUEUE",
    "Bucket",
    "DeclarationError",
    "Function",
    "Http",
    "HttpRoute",
    "Platform",
    "Queue",
    "QueueSource",
    "Schedule",
    "Service",
    "Trigger",
    "WorkerPool",
]
