"""Lambda entry point of the lease reaper (EventBridge schedule): expired leases -> retry or dead."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from trace_core.dispatcher import deps, reaper

logger = Logger(service="lease-reaper")
tracer = Tracer(service="lease-reaper")
metrics = Metrics(namespace="Trace", service="lease-reaper")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, int]:
    with deps.get().pool.connection() as conn:
        reaped = reaper.reap_all(conn, batch_size=100, max_batches=50)
    metrics.add_metric(name="LeasesReaped", unit=MetricUnit.Count, value=reaped)
    logger.info("leases reaped", extra={"reaped": reaped, "scheduled_at": event.time})
    return {"reaped": reaped}
