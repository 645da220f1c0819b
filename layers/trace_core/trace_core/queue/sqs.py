"""SqsDriver: the QueueDriver on Amazon SQS (moto server or LocalStack locally, SQS in AWS).

Queues are named as in the outbox (``trace-tasks``) and resolved to URLs once
with ``GetQueueUrl``. Max receives and the dead-letter queue are the queue's
own redrive policy (set by provisioning / the CDK app): SQS moves a message
received ``maxReceiveCount`` times to the DLQ on the next receive.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from trace_core.queue import base, errors

log = logging.getLogger(__name__)

# SQS limits: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
MAX_BATCH = 10
MAX_WAIT_SECONDS = 20
MAX_VISIBILITY_SECONDS = 43200
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight", "ReceiptHandleIsInvalidException"}
_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


class SqsDriver:
    """QueueDriver on SQS. ``sqs_client`` is a boto3 SQS client; ``queue_urls`` pre-resolves names."""

    def __init__(self, sqs_client: Any, queue_urls: Mapping[str, str] | None = None) -> None:
        self._sqs = sqs_client
        self._urls: dict[str, str] = dict(queue_urls or {})
        self._dlq_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ QueueDriver
    def publish(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        url = self.url(queue)
        failed: list[dict[str, Any]] = []
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start : start + MAX_BATCH]
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(body, separators=(",", ":"), default=str)}
                for i, body in enumerate(chunk)
            ]
            response = self._call("send_message_batch", queue, QueueUrl=url, Entries=entries)
            failed.extend(response.get("Failed", []))
        if failed:
            raise errors.PublishError(
                f"{len(failed)} of {len(bodies)} messages were not published to {queue}: "
                f"{failed[0].get('Code')}: {failed[0].get('Message')}",
                queue=queue,
                failed=failed,
            )

    def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: float = 1.0, visibility_seconds: int = 30
    ) -> list[base.Message]:
        if max_messages < 1:
            raise errors.QueueError(f"max_messages must be >= 1, got {max_messages}", field="max_messages")
        if not 0 <= visibility_seconds <= MAX_VISIBILITY_SECONDS:
            raise errors.QueueError(
                f"visibility_seconds must be 0..{MAX_VISIBILITY_SECONDS}, got {visibility_seconds}",
                field="visibility_seconds",
            )
        response = self._call(
            "receive_message",
            queue,
            QueueUrl=self.url(queue),
            MaxNumberOfMessages=min(max_messages, MAX_BATCH),
            # SQS takes whole seconds (0..20); round up so a short wait still long-polls.
            WaitTimeSeconds=min(MAX_WAIT_SECONDS, max(0, math.ceil(wait_seconds))),
            VisibilityTimeout=visibility_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [self._message(queue, raw) for raw in response.get("Messages", [])]

    def ack(self, messages: Sequence[base.Message]) -> None:
        by_queue: dict[str, list[base.Message]] = {}
        for message in messages:
            by_queue.setdefault(message.queue, []).append(message)
        for queue, group in by_queue.items():
            url = self.url(queue)
            for start in range(0, len(group), MAX_BATCH):
                chunk = group[start : start + MAX_BATCH]
                response = self._call(
                    "delete_message_batch",
                    queue,
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(chunk)],
                )
                for failure in response.get("Failed", []):
                    if failure.get("Code") not in _STALE_RECEIPT:
                        raise errors.QueueError(
                            f"ack on {queue} failed: {failure.get('Code')}: {failure.get('Message')}", queue=queue
                        )

    def extend(self, message: base.Message, visibility_seconds: int) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url(message.queue),
                ReceiptHandle=message.receipt,
                VisibilityTimeout=min(visibility_seconds, MAX_VISIBILITY_SECONDS),
            )
        except ClientError as exc:
            if _code(exc) in _STALE_RECEIPT:
                # Deleted, or redelivered to someone else: the lease in Postgres decides, not us.
                log.info("sqs: extend of a stale receipt on %s ignored (%s)", message.queue, _code(exc))
                return
            raise self._translate(exc, message.queue) from exc

    def dead_letter(self, message: base.Message, reason: str) -> None:
        dlq = self.dead_letter_url(message.queue)
        self._call(
            "send_message",
            message.queue,
            QueueUrl=dlq,
            MessageBody=message.raw if message.raw is not None else json.dumps(
                message.body, separators=(",", ":"), default=str
            ),
            MessageAttributes={
                "trace_dead_reason": {"DataType": "String", "StringValue": reason[:1000] or "unspecified"},
                "trace_source_queue": {"DataType": "String", "StringValue": message.queue},
            },
        )
        self.ack([message])

    # ------------------------------------------------------------ helpers
    def url(self, queue: str) -> str:
        """The URL of ``queue`` (resolved once with GetQueueUrl)."""
        with self._lock:
            cached = self._urls.get(queue)
        if cached:
            return cached
        url = str(self._call("get_queue_url", queue, QueueName=queue)["QueueUrl"])
        with self._lock:
            self._urls[queue] = url
        return url

    def dead_letter_url(self, queue: str) -> str:
        """The URL of ``queue``'s dead-letter queue, from its redrive policy."""
        with self._lock:
            cached = self._dlq_urls.get(queue)
        if cached:
            return cached
        attributes = self._call(
            "get_queue_attributes", queue, QueueUrl=self.url(queue), AttributeNames=["RedrivePolicy"]
        ).get("Attributes", {})
        if "RedrivePolicy" not in attributes:
            raise errors.QueueNotFoundError(
                f"queue {queue} has no dead-letter queue (no RedrivePolicy)",
                queue=queue,
                fix="create it with a redrive policy (trace-lite up provisions one for every queue)",
            )
        arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        url = self.url(arn.rsplit(":", 1)[-1])
        with self._lock:
            self._dlq_urls[queue] = url
        return url

    def close(self) -> None:
        """Nothing to release (boto3 clients need no closing); here for symmetry with pgqueue."""

    def _message(self, queue: str, raw: dict[str, Any]) -> base.Message:
        text = str(raw.get("Body", ""))
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        malformed = not isinstance(body, dict)
        if malformed:
            log.warning("sqs: message %s on %s is not a JSON object", raw.get("MessageId"), queue)
        return base.Message(
            queue=queue,
            message_id=str(raw["MessageId"]),
            body={} if malformed else body,
            receipt=str(raw["ReceiptHandle"]),
            receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            raw=text if malformed else None,
        )

    def _call(self, operation: str, queue: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._sqs, operation)(**kwargs)
        except ClientError as exc:
            raise self._translate(exc, queue) from exc

    @staticmethod
    def _translate(exc: ClientError, queue: str) -> errors.QueueError:
        code = _code(exc)
        if code in _MISSING_QUEUE:
            return errors.QueueNotFoundError(
                f"queue {queue} does not exist", queue=queue,
                fix="run `trace-lite up` (it provisions the queues) or deploy the CDK app",
            )
        return errors.QueueError(f"sqs {code} on {queue}: {exc}", queue=queue, code=code)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
