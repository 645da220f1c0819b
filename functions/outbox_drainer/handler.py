"""Lambda entry point of the outbox drainer (EventBridge schedule): publish pending wake-ups."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from trace_core.dispatcher import deps, outbox

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
        published = outbox.drain_all(conn, d.driver, batch_size=1000, max_batches=10)
        oldest = outbox.oldest_pending_age_seconds(conn)
    metrics.add_metric(name="OutboxPublished", unit=MetricUnit.Count, value=published)
    metrics.add_metric(name="OutboxOldestAgeSeconds", unit=MetricUnit.Seconds, value=oldest)
    logger.info("outbox drained", extra={"published": published, "scheduled_at": event.time})
    return {"published": published}
