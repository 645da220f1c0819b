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

Packing. Every call costs about the same CPU and money whatever it carries, so a
publish of more than ``MAX_BATCH`` bodies packs up to ``MAX_PACK`` of them into one
SQS message, ``{"trace_packed": [body, ...]}`` (a small publish still sends one
message per body, so idle consumers share it), except on ``whole_queues``, whose
consumers read SQS's records themselves (a Lambda event source: the sink function).
Packing is invisible to callers:
``receive`` hands each body out as its own :class:`base.Message` (``message_id``
``<sqs id>/<i>``, the receipt shared), and the SQS message is deleted only when
every body of it was acked (or dead-lettered). A body not acked by the time its
message's visibility runs out comes back with its siblings (duplicates: consumers
tolerate them); none is ever deleted unacked. ``receive`` never hands out more than
``max_messages``: the bodies over it are published again at once, as a new message,
and count as acked on the old one.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from trace_core.queue import base, errors

log = logging.getLogger(__name__)

# SQS limits: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
MAX_BATCH = 10
MAX_WAIT_SECONDS = 20
MAX_VISIBILITY_SECONDS = 43200
# Batch calls of one publish or ack in flight at once (the factory sizes botocore's connection pool to match).
MAX_IN_FLIGHT = 8
ENTRY_RETRIES = 2
# Bodies per SQS message when a publish is larger than one batch; a packed message stays under
# MAX_PACK_BYTES, so a batch of them stays under SQS's 256 KiB per call (a larger body travels alone).
MAX_PACK = 10
MAX_PACK_BYTES = 24 * 1024
PACK_KEY = "trace_packed"
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight", "ReceiptHandleIsInvalidException"}
_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclasses.dataclass
class _Packet:
    """A received SQS message that carries several bodies: the ids of those not acked yet."""

    queue: str
    pending: set[str]
    deadline: float  # time.monotonic() when its visibility runs out (after that it may be redelivered)


class SqsDriver:
    """QueueDriver on SQS. ``sqs_client`` is a boto3 SQS client; ``queue_urls`` pre-resolves names;
    ``whole_queues`` get one SQS message per body (their consumers do not read through this driver)."""

    def __init__(
        self, sqs_client: Any, queue_urls: Mapping[str, str] | None = None, *, whole_queues: Collection[str] = ()
    ) -> None:
        self._sqs = sqs_client
        self._urls: dict[str, str] = dict(queue_urls or {})
        self._whole = frozenset(whole_queues)
        self._dlq_urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._packets: dict[str, _Packet] = {}  # by receipt: packed messages received and not fully acked
        self._pack_seen: dict[str, int] = {}  # by queue: the most bodies per message in the last receive

    # ------------------------------------------------------------ QueueDriver
    def publish(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Send ``bodies`` in batches of 10 messages (packed, see the module doc), several batches at once.

        Raises :class:`errors.PublishError` naming the ``indexes`` (into ``bodies``) that SQS did
        not accept; every other body was accepted. If no batch got through at all, the first
        batch's error is raised as it is (a missing queue stays a QueueNotFoundError).
        """
        self._publish_texts(queue, [json.dumps(body, separators=(",", ":"), default=str) for body in bodies])

    def _publish_texts(self, queue: str, texts: Sequence[str]) -> None:
        url = self.url(queue)
        groups = [[i] for i in range(len(texts))] if queue in self._whole else pack(texts)
        entries = [texts[g[0]] if len(g) == 1 else f'{{"{PACK_KEY}":[{",".join(texts[i] for i in g)}]}}'
                   for g in groups]
        chunks = [list(range(start, min(start + MAX_BATCH, len(entries))))
                  for start in range(0, len(entries), MAX_BATCH)]
        outcomes = self._map(lambda chunk: self._send_chunk(queue, url, entries, chunk), chunks)
        failed: dict[int, dict[str, Any]] = {}  # by entry
        first_error: Exception | None = None
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, Exception):
                first_error = first_error or outcome
                failed.update({i: {"Code": type(outcome).__name__, "Message": str(outcome)} for i in chunk})
            else:
                failed.update(outcome)
        if not failed:
            return
        if first_error is not None and len(failed) == len(entries):
            raise first_error
        by_body = {i: failed[entry] for entry in failed for i in groups[entry]}
        reasons = [by_body[i] for i in sorted(by_body)]
        raise errors.PublishError(
            f"{len(by_body)} of {len(texts)} messages were not published to {queue}: "
            f"{reasons[0].get('Code')}: {reasons[0].get('Message')}",
            queue=queue,
            failed=reasons,
            indexes=sorted(by_body),
        )

    def receive(
        self, queue: str, *, max_messages: int = 10, wait_seconds: float = 1.0, visibility_seconds: int = 30
    ) -> list[base.Message]:
        """Long-poll one ReceiveMessage; if it comes back full and more were asked for, receive the rest
        (10 per call, without waiting) several calls at once. Each call asks for as many SQS messages
        as should carry ``max_messages`` bodies, judging by the last receive's packing."""
        if max_messages < 1:
            raise errors.QueueError(f"max_messages must be >= 1, got {max_messages}", field="max_messages")
        if not 0 <= visibility_seconds <= MAX_VISIBILITY_SECONDS:
            raise errors.QueueError(
                f"visibility_seconds must be 0..{MAX_VISIBILITY_SECONDS}, got {visibility_seconds}",
                field="visibility_seconds",
            )
        self._forget_expired()
        # SQS takes whole seconds (0..20); round up so a short wait still long-polls.
        wait = min(MAX_WAIT_SECONDS, max(0, math.ceil(wait_seconds)))
        first = min(MAX_BATCH, max(1, max_messages // self._pack_seen.get(queue, 1)))
        raw = self._receive_raw(queue, first, wait, visibility_seconds)
        got = self._unpack(queue, raw, visibility_seconds)
        calls = (max_messages - len(got)) // self._pack_seen.get(queue, 1) if len(raw) == MAX_BATCH else 0
        sizes = [min(MAX_BATCH, calls - start) for start in range(0, calls, MAX_BATCH)]
        for outcome in self._map(lambda size: self._receive_raw(queue, size, 0, visibility_seconds), sizes):
            if isinstance(outcome, Exception):
                # What was received stays ours; the failed call's messages (if any) reappear after visibility.
                log.warning("sqs: a receive from %s failed: %s", queue, outcome)
                continue
            got.extend(self._unpack(queue, outcome, visibility_seconds))
        if len(got) > max_messages:
            self._give_back(queue, got[max_messages:])
            del got[max_messages:]
        return got

    def _receive_raw(self, queue: str, size: int, wait: int, visibility_seconds: int) -> list[dict[str, Any]]:
        response = self._call(
            "receive_message",
            queue,
            QueueUrl=self.url(queue),
            MaxNumberOfMessages=size,
            WaitTimeSeconds=wait,
            VisibilityTimeout=visibility_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return list(response.get("Messages", []))

    def _unpack(self, queue: str, raw: Sequence[dict[str, Any]], visibility_seconds: int) -> list[base.Message]:
        """One Message per body; packed SQS messages are registered until all their bodies are acked."""
        got: list[base.Message] = []
        deadline = time.monotonic() + visibility_seconds
        most = 0
        for item in raw:
            parts = self._messages(queue, item)
            most = max(most, len(parts))
            if len(parts) > 1:
                with self._lock:
                    self._packets[parts[0].receipt] = _Packet(queue, {m.message_id for m in parts}, deadline)
            got.extend(parts)
        if most:
            self._pack_seen[queue] = most
        return got

    def _give_back(self, queue: str, surplus: Sequence[base.Message]) -> None:
        """Publish again the bodies received over what was asked for; those that went out count as acked.

        If that fails they stay unacked: their SQS message comes back after its visibility."""
        texts = [m.raw if m.raw is not None else json.dumps(m.body, separators=(",", ":"), default=str)
                 for m in surplus]
        try:
            self._publish_texts(queue, texts)
            sent = list(surplus)
        except errors.PublishError as exc:
            rejected = set(exc.details.get("indexes") or range(len(surplus)))
            sent = [m for i, m in enumerate(surplus) if i not in rejected]
            log.warning("sqs: %d surplus message(s) on %s not given back (%s); they return after visibility",
                        len(rejected), queue, exc)
        except Exception as exc:  # noqa: BLE001 - they come back after their visibility
            log.warning("sqs: %d surplus message(s) on %s not given back (%s); they return after visibility",
                        len(surplus), queue, exc)
            return
        self.ack(sent)

    def ack(self, messages: Sequence[base.Message]) -> None:
        """Delete each message; a packed SQS message once the last of its bodies is acked."""
        done: dict[tuple[str, str], base.Message] = {}
        with self._lock:
            for message in messages:
                packet = self._packets.get(message.receipt)
                if packet is not None:
                    packet.pending.discard(message.message_id)
                    if packet.pending:
                        continue
                    del self._packets[message.receipt]
                elif "/" in message.message_id:
                    # A body of a packed message whose visibility ran out: it may be back with bodies
                    # nobody acked, so it is not deleted (it returns, a duplicate at worst).
                    continue
                done[(message.queue, message.receipt)] = message
        chunks: list[tuple[str, Sequence[base.Message]]] = []
        by_queue: dict[str, list[base.Message]] = {}
        for message in done.values():
            by_queue.setdefault(message.queue, []).append(message)
        for queue, group in by_queue.items():
            chunks += [(queue, group[start : start + MAX_BATCH]) for start in range(0, len(group), MAX_BATCH)]
        for outcome in self._map(lambda item: self._delete_chunk(*item), chunks):
            if isinstance(outcome, Exception):
                raise outcome

    def extend(self, message: base.Message, visibility_seconds: int) -> None:
        """Keep ``message`` invisible (a packed one: with every body it carries)."""
        seconds = min(visibility_seconds, MAX_VISIBILITY_SECONDS)
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url(message.queue), ReceiptHandle=message.receipt, VisibilityTimeout=seconds,
            )
        except ClientError as exc:
            if _code(exc) in _STALE_RECEIPT:
                # Deleted, or redelivered to someone else: the lease in Postgres decides, not us.
                log.info("sqs: extend of a stale receipt on %s ignored (%s)", message.queue, _code(exc))
                return
            raise self._translate(exc, message.queue) from exc
        with self._lock:
            packet = self._packets.get(message.receipt)
            if packet is not None:
                packet.deadline = time.monotonic() + seconds

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

    def _forget_expired(self) -> None:
        """Drop packed messages whose visibility ran out: they are redelivered, with a new receipt."""
        now = time.monotonic()
        with self._lock:
            for receipt in [r for r, p in self._packets.items() if p.deadline < now]:
                del self._packets[receipt]

    def close(self) -> None:
        """Stop the batch threads (boto3 clients need no closing)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _send_chunk(
        self, queue: str, url: str, texts: Sequence[str], chunk: Sequence[int]
    ) -> dict[int, dict[str, Any]]:
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

    def _messages(self, queue: str, raw: dict[str, Any]) -> list[base.Message]:
        """The bodies one SQS message carries: one, or each of a packed message's."""
        text = str(raw.get("Body", ""))
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        receipt = str(raw["ReceiptHandle"])
        receive_count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        parts = body.get(PACK_KEY) if isinstance(body, dict) and len(body) == 1 else None
        if not isinstance(parts, list) or not parts:
            return [_message(queue, str(raw["MessageId"]), receipt, receive_count, body, text)]
        return [_message(queue, f"{raw['MessageId']}/{i}", receipt, receive_count, part, None)
                for i, part in enumerate(parts)]

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


def pack(texts: Sequence[str]) -> list[list[int]]:
    """Which texts travel together (indexes, in order): one per message while they fit one batch;
    beyond, as few batches as MAX_PACK per message allows, each message under MAX_PACK_BYTES."""
    messages = min(len(texts), max(MAX_BATCH, math.ceil(len(texts) / MAX_PACK)))
    per = math.ceil(len(texts) / messages) if texts else 1
    groups: list[list[int]] = []
    size = 0
    for i, text in enumerate(texts):
        if groups and len(groups[-1]) < per and size + len(text) + 1 <= MAX_PACK_BYTES:
            groups[-1].append(i)
            size += len(text) + 1
        else:
            groups.append([i])
            size = len(text) + 1
    return groups


def _message(
    queue: str, message_id: str, receipt: str, receive_count: int, body: Any, text: str | None
) -> base.Message:
    """A Message for ``body``; one that is not a JSON object arrives as ``{}`` with its text in ``raw``."""
    if isinstance(body, dict):
        return base.Message(queue=queue, message_id=message_id, body=body, receipt=receipt,
                            receive_count=receive_count)
    log.warning("sqs: message %s on %s is not a JSON object", message_id, queue)
    raw = text if text is not None else json.dumps(body, separators=(",", ":"))
    return base.Message(queue=queue, message_id=message_id, body={}, receipt=receipt,
                        receive_count=receive_count, raw=raw)


def _outcome(fn: Callable[[_T], _R], item: _T) -> _R | Exception:
    try:
        return fn(item)
    except Exception as exc:  # noqa: BLE001 - handed back to the caller, which decides
        return exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
