"""Creates the buckets and queues the platform expects, idempotently (Lite and tests)."""

from __future__ import annotations

import json

from trace_core import aws
from trace_core.settings import Settings

# Queues and how many receives a message gets before its DLQ takes it.
QUEUES: dict[str, int] = {"trace-tasks": 5, "trace-sink": 5, "trace-deliveries": 5}


def buckets(settings: Settings) -> list[str]:
    return [settings.datasets_bucket, settings.results_bucket, settings.scratch_bucket]


def provision(settings: Settings) -> dict[str, str]:
    """Create buckets and queues (each with a DLQ and redrive policy); returns queue URLs by name."""
    s3 = aws.client("s3", settings)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in buckets(settings):
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    sqs = aws.client("sqs", settings)
    urls: dict[str, str] = {}
    for name, max_receives in QUEUES.items():
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        urls[name] = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": "30",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
            },
        )["QueueUrl"]
        urls[f"{name}-dlq"] = dlq_url
    return urls
