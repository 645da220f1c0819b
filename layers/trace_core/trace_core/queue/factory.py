"""``driver_for(settings)``: the configured QueueDriver (``TRACE_QUEUE_DRIVER``: pgqueue or sqs)."""

from __future__ import annotations

from trace_core import aws, errors, platform
from trace_core.db import conninfo, pool
from trace_core.queue import base, pgqueue, sqs
from trace_core.settings import Settings


def driver_for(settings: Settings) -> base.QueueDriver:
    """A new driver for ``settings``. Callers close it when done (``driver.close()``)."""
    if settings.queue_driver == "sqs":
        # One connection per batch call in flight, plus the receive loop's and the heartbeater's. Queues
        # that feed a Lambda function hand it SQS's own records: their messages are never packed.
        whole = {source.queue for source in platform.PLATFORM.queue_sources().values()}
        return sqs.SqsDriver(aws.client("sqs", settings, max_pool_connections=sqs.MAX_IN_FLIGHT + 4),
                             whole_queues=whole)
    if not settings.database_url:
        raise errors.ConfigError(
            "TRACE_QUEUE_DRIVER=pgqueue needs a database: TRACE_DATABASE_URL is unset",
            variable="TRACE_DATABASE_URL",
        )
    # Worker pools claim due tasks from Postgres themselves: on pgqueue their queues, and the configured
    # task queue (TRACE_TASK_QUEUE), carry signals only (decision 2302). SQS keeps a message per wake-up,
    # since there the message is what wakes a worker.
    signals = {worker_pool.queue for worker_pool in platform.PLATFORM.worker_pools.values()}
    signals.add(settings.task_queue)
    return pgqueue.PgQueueDriver(pool.get(conninfo.resolve(settings), max_size=settings.db_pool_max),
                                 signal_queues=signals)
