"""Lambda entry point of the outbox drainer (EventBridge schedule): publish pending wake-ups.

It runs once a minute, so it drains until the backlog is empty or the invocation
is ``MARGIN_SECONDS`` from its timeout (a fixed number of batches would cap the
whole platform's wake-ups per minute; docs/architecture/sqs_throughput.md).
"""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from trace_core.dispatcher import deps, outbox

BATCH_SIZE = 1000
# Time left for the batch in flight (a drain of 1,000 rows: ~100 SendMessageBatch calls) and the metrics.
MARGIN_SECONDS = 15.0

logger = Logger(service="outbox-drainer")
tracer = Tracer(service="outbox-drainer")
metrics = Metrics(namespace="Trace", service="outbox-drainer")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, int]:
    d = deps.get()
    with d.pool.connection() as conn:
        until = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS
        published = outbox.drain_all(conn, d.driver, batch_size=BATCH_SIZE, max_batches=10_000, until=until)
        oldest = outbox.oldest_pending_age_seconds(conn)
    metrics.add_metric(name="OutboxPublished", unit=MetricUnit.Count, value=published)
    metrics.add_metric(name="OutboxOldestAgeSeconds", unit=MetricUnit.Seconds, value=oldest)
    logger.info("outbox drained", extra={"published": published, "scheduled_at": event.time})
    return {"published": published}
