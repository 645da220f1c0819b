"""SqsDriver: the QueueDriver on Amazon SQS (moto server or LocalStack locally, SQS in AWS).

Queues are named as in the outbox (``trace-tasks``) and resolved to URLs once
with ``GetQueueUrl``. Max receives and the dead-letter queue are the queue's
own redrive policy (set by provisioning / the CDK app): SQS moves a message
received ``maxReceiveCount`` times to the DLQ on the next receive.

SQS takes at most 10 messages per call, so a publish, receive or ack of many is
many calls: they run ``MAX_IN_FLIGHT`` at a time on a small thread pool, since
each is a network round trip of 10-30 ms in AWS (docs/architecture/sqs_throughput.md).
Entries SQS rejects through no fault of ours are sent again ``ENTRY_RETRIES``
times; what is still rejected is reported by index in :class:`errors.PublishError`.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from trace_core.queue import base, errors

log = logging.getLogger(__name__)

# SQS limits: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
MAX_BATCH = 10
MAX_WAIT_SECONDS = 20
MAX_VISIBILITY_SECONDS = 43200
# Batch calls of one publish or ack in flight at once (the factory sizes botocore's connection pool to match).
MAX_IN_FLIGHT = 8
ENTRY_RETRIES = 2
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight", "ReceiptHandleIsInvalidException"}
_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}

_T = TypeVar("_T")
_R = TypeVar("_R")


class SqsDriver:
    """QueueDriver on SQS. ``sqs_client`` is a boto3 SQS client; ``queue_urls`` pre-resolves names."""

    def __init__(self, sqs_client: Any, queue_urls: Mapping[str, str] | None = None) -> None:
        self._sqs = sqs_client
        self._urls: dict[str, str] = dict(queue_urls or {})
        self._dlq_urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # ------------------------------------------------------------ QueueDriver
    def publish(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Send ``bodies`` in batches of 10, several batches at once.

        Raises :class:`errors.PublishError` naming the ``indexes`` (into ``bodies``) that SQS did
        not accept; every other body was accepted. If no batch got through at all, the first
        batch's error is raised as it is (a missing queue stays a QueueNotFoundError).
        """
        url = self.url(queue)
        texts = [json.dumps(body, separators=(",", ":"), default=str) for body in bodies]
        chunks = [list(range(start, min(start + MAX_BATCH, len(texts)))) for start in range(0, len(texts), MAX_BATCH)]
        outcomes = self._map(lambda chunk: self._send_chunk(queue, url, texts, chunk), chunks)
        failed: dict[int, dict[str, Any]] = {}
        first_error: Exception | None = None
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, Exception):
                first_error = first_error or outcome
                failed.update({i: {"Code": type(outcome).__name__, "Message": str(outcome)} for i in chunk})
            else:
                failed.update(outcome)
        if not failed:
            return
        if first_error is not None and len(failed) == len(texts):
            raise first_error
        reasons = [failed[i] for i in sorted(failed)]
        raise errors.PublishError(
            f"{len(failed)} of {len(bodies)} messages were not published to {queue}: "
            f"{reasons[0].get('Code')}: {reasons[0].get('Message')}",
            queue=queue,
            failed=reasons,
            indexes=sorted(failed),
        )

    def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: float = 1.0, visibility_seconds: int = 30
    ) -> list[base.Message]:
        """Long-poll one ReceiveMessage; if it comes back full and more were asked for, receive the rest
        (10 per call, without waiting) several calls at once."""
        if max_messages < 1:
            raise errors.QueueError(f"max_messages must be >= 1, got {max_messages}", field="max_messages")
        if not 0 <= visibility_seconds <= MAX_VISIBILITY_SECONDS:
            raise errors.QueueError(
                f"visibility_seconds must be 0..{MAX_VISIBILITY_SECONDS}, got {visibility_seconds}",
                field="visibility_seconds",
            )
        # SQS takes whole seconds (0..20); round up so a short wait still long-polls.
        got = self._receive_one(queue, min(max_messages, MAX_BATCH),
                                min(MAX_WAIT_SECONDS, max(0, math.ceil(wait_seconds))), visibility_seconds)
        rest = max_messages - len(got)
        if len(got) < MAX_BATCH or rest <= 0:
            return got
        sizes = [min(MAX_BATCH, rest - start) for start in range(0, rest, MAX_BATCH)]
        for outcome in self._map(lambda size: self._receive_one(queue, size, 0, visibility_seconds), sizes):
            if isinstance(outcome, Exception):
                # What was received stays ours; the failed call's messages (if any) reappear after visibility.
                log.warning("sqs: a receive from %s failed: %s", queue, outcome)
                continue
            got.extend(outcome)
        return got

    def _receive_one(self, queue: str, size: int, wait: int, visibility_seconds: int) -> list[base.Message]:
        response = self._call(
            "receive_message",
            queue,
            QueueUrl=self.url(queue),
            MaxNumberOfMessages=size,
            WaitTimeSeconds=wait,
            VisibilityTimeout=visibility_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [self._message(queue, raw) for raw in response.get("Messages", [])]

    def ack(self, messages: Sequence[base.Message]) -> None:
        chunks: list[tuple[str, Sequence[base.Message]]] = []
        by_queue: dict[str, list[base.Message]] = {}
        for message in messages:
            by_queue.setdefault(message.queue, []).append(message)
        for queue, group in by_queue.items():
            chunks += [(queue, group[start : start + MAX_BATCH]) for start in range(0, len(group), MAX_BATCH)]
        for outcome in self._map(lambda item: self._delete_chunk(*item), chunks):
            if isinstance(outcome, Exception):
                raise outcome

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
        """Stop the batch threads (boto3 clients need no closing)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _send_chunk(self, queue: str, url: str, texts: Sequence[str], chunk: Sequence[int]) -> dict[int, dict[str, Any]]:
        """One SendMessageBatch of ``texts[i] for i in chunk``; the entries still rejected after retries, by index."""
        todo = list(chunk)
        failed: dict[int, dict[str, Any]] = {}
        for attempt in range(1 + ENTRY_RETRIES):
            response = self._call(
                "send_message_batch", queue, QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": texts[i]} for i in todo],
            )
            failed = {int(f["Id"]): f for f in response.get("Failed", [])}
            # A sender fault (too large, bad attribute) fails again however often it is sent.
            todo = [i for i, f in failed.items() if not f.get("SenderFault")]
            if not todo or attempt == ENTRY_RETRIES:
                break
            log.info("sqs: %d of %d entries to %s rejected by SQS; sending them again", len(todo), len(chunk), queue)
        return failed

    def _delete_chunk(self, queue: str, chunk: Sequence[base.Message]) -> None:
        response = self._call(
            "delete_message_batch",
            queue,
            QueueUrl=self.url(queue),
            Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(chunk)],
        )
        for failure in response.get("Failed", []):
            if failure.get("Code") not in _STALE_RECEIPT:
                raise errors.QueueError(
                    f"ack on {queue} failed: {failure.get('Code')}: {failure.get('Message')}", queue=queue
                )

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R | Exception]:
        """``fn`` over ``items``, up to MAX_IN_FLIGHT at once; each result or the exception it raised, in order."""
        if len(items) <= 1:
            return [_outcome(fn, item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="sqs-batch")
            pool = self._pool
        return list(pool.map(lambda item: _outcome(fn, item), items))

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


def _outcome(fn: Callable[[_T], _R], item: _T) -> _R | Exception:
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which decides
        return exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
