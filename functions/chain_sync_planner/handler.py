"""Lambda entry point of the chain sync planner's scheduled pass (EventBridge schedule).

Repairs broken hash links, polls follow_head jobs' safe head, tops up ranges,
and reschedules ranges whose task died: the planner's work that no task
completion triggers.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from trace_core.chainsync import planner
from trace_core.dispatcher import deps

logger = Logger(service="chain-sync-planner")
tracer = Tracer(service="chain-sync-planner")
metrics = Metrics(namespace="Trace", service="chain-sync-planner")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, int]:
    with deps.get().pool.connection() as conn:
        results = planner.scheduled_tick(conn)
    scheduled = sum(r.scheduled for r in results.values())
    rescheduled = sum(r.rescheduled for r in results.values())
    metrics.add_metric(name="RangesScheduled", unit=MetricUnit.Count, value=scheduled)
    metrics.add_metric(name="RangesRescheduled", unit=MetricUnit.Count, value=rescheduled)
    logger.info("planner pass", extra={"jobs": len(results), "scheduled": scheduled, "rescheduled": rescheduled,
                                       "scheduled_at": event.time})
    return {"jobs": len(results), "scheduled": scheduled, "rescheduled": rescheduled}
