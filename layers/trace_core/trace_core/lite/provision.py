"""Creates the buckets and queues the platform declares (``trace_core.platform``), idempotently (Lite and tests)."""

from __future__ import annotations

import json

from trace_core import aws, platform
from trace_core.settings import Settings

# Queues and how many receives a message gets before its DLQ takes it.
QUEUES: dict[str, int] = {name: queue.max_receives for name, queue in platform.PLATFORM.queues.items()}


def buckets(settings: Settings) -> list[str]:
    """The declared buckets' names, as ``settings`` gives them (``TRACE_DATASETS_BUCKET``, ...)."""
    return [getattr(settings, bucket.setting) for bucket in platform.PLATFORM.buckets.values()]


def provision(settings: Settings) -> dict[str, str]:
    """Create buckets and queues (each with a DLQ and redrive policy); returns queue URLs by name."""
    s3 = aws.client("s3", settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in buckets(settings):
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    sqs = aws.client("sqs", settings)
    urls: dict[str, str] = {}
    for name, queue in platform.PLATFORM.queues.items():
        dlq_url = sqs.create_queue(QueueName=queue.dlq)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        urls[name] = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": "30",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receives)}
                ),
            },
        )["QueueUrl"]
        urls[queue.dlq] = dlq_url
    return urls
