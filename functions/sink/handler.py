"""Lambda entry point of the dataset sink (SQS ``trace-sink``, partial batch responses).

Each message points at one staged batch and is applied on its own: a failed
message is reported in ``batchItemFailures`` (and, after the queue's max
receives, moved to its DLQ by SQS) while the others of the same invocation land.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from trace_core import errors
from trace_core.dispatcher import deps
from trace_core.sink import service, store

logger = Logger(service="sink")
tracer = Tracer(service="sink")
metrics = Metrics(namespace="Trace", service="sink")
# A batch whose every message fails is still a partial response (all of them), not a crash.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    try:
        applied = service.consume(store.PostgresSinkStore(deps.get().pool), record.body, message_id=record.message_id)
    except errors.TraceError as exc:
        metrics.add_metric(name="SinkMessagesFailed", unit=MetricUnit.Count, value=1)
        logger.warning("sink message failed", extra={
            "message_id": record.message_id, "receive_count": record.attributes.approximate_receive_count,
            "error": type(exc).__name__, "reason": exc.message, "details": exc.details,
        })
        raise
    metrics.add_metric(name="SinkRowsInserted", unit=MetricUnit.Count, value=applied.inserted)
    metrics.add_metric(name="SinkRowsDuplicate", unit=MetricUnit.Count, value=applied.duplicates)
    logger.info("sink batch applied", extra={"message_id": record.message_id, **applied.model_dump(mode="json")})
    return applied.model_dump(mode="json")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
