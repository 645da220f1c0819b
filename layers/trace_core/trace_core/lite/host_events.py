"""The events AWS sends to Lambda, built locally (pure: no I/O), and a LambdaContext stand-in.

Shapes follow the AWS documentation (checked in tests with Powertools' parser
models and data classes):
- API Gateway HTTP API, payload format 2.0:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
- EventBridge scheduled event:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html
- SQS event source with partial batch responses:
  https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from trace_core.queue import base

ACCOUNT = "123456789012"  # the account moto and the AWS docs use for examples
API_ID = "tracelite"


def _now_ms() -> int:
    return int(time.time() * 1000)


def http_api_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str = "127.0.0.1",
    region: str = "us-east-1",
    domain: str = "127.0.0.1",
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) proxy event for the ``$default`` route."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        # HTTP API joins repeated headers with commas.
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@dataclasses.dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_response(result: Any) -> HttpResponse:
    """Turn a handler's return value into an HTTP response, as HTTP API (payload 2.0) does.

    A dict with ``statusCode`` is a full response; anything else is a 200 JSON body
    (HTTP API's inferred format).
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], text.encode())
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return HttpResponse(int(result["statusCode"]), headers, body)


def scheduled_event(rule: str, *, region: str = "us-east-1") -> dict[str, Any]:
    """An EventBridge "Scheduled Event" for ``rule``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def queue_arn(queue: str, region: str = "us-east-1") -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}"


def sqs_event(messages: Sequence[base.Message], *, region: str = "us-east-1") -> dict[str, Any]:
    """An SQS batch event with one record per received message (``messageId`` = the message's id)."""
    records = []
    for message in messages:
        body = message.raw if message.raw is not None else json.dumps(message.body, separators=(",", ":"))
        now = str(_now_ms())
        records.append({
            "messageId": message.message_id,
            "receiptHandle": message.receipt,
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": now,
                "SenderId": ACCOUNT,
                "ApproximateFirstReceiveTimestamp": now,
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn(message.queue, region),
            "awsRegion": region,
        })
    return {"Records": records}


def batch_failures(result: Any, message_ids: Sequence[str]) -> set[str] | None:
    """The failed message ids of a partial batch response; None means "the whole batch failed".

    As Lambda does: no ``batchItemFailures`` (or an empty list) is full success; an
    item whose ``itemIdentifier`` is missing or unknown fails the whole batch.
    """
    if not isinstance(result, Mapping) or not result.get("batchItemFailures"):
        return set()
    failures = result["batchItemFailures"]
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    known = set(message_ids)
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in known:
            return None
        failed.add(identifier)
    return failed


class LambdaContext:
    """What Lambda passes as ``context`` (the attributes Powertools and handlers read)."""

    def __init__(self, function_name: str, *, timeout_seconds: float = 30.0, memory_mb: int = 512,
                 region: str = "us-east-1") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"lite/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
