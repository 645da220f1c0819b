"""The host's events have the shapes AWS sends: checked with Powertools' parser models, data classes and samples."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, EventBridgeEvent, SQSEvent
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    EventBridgeModel,
    SqsModel,
)
from trace_core.lite import host_events
from trace_core.queue import base

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _keys(value: object, prefix: str = "") -> set[str]:
    """Every key path of a JSON document (list items share their parent's path)."""
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            found.add(prefix + key)
            found |= _keys(item, f"{prefix}{key}.")
        return found
    if isinstance(value, list):
        return set().union(*(_keys(item, prefix) for item in value)) if value else set()
    return set()


def _http(**overrides: object) -> dict:
    args: dict = {"method": "post", "raw_path": "/v1/tasks", "raw_query": "",
                  "headers": [("Content-Type", "application/json"), ("User-Agent", "trace-worker/0.1"),
                              ("Host", "dispatcher.example.internal")],
                  "body": b'{"operator": "noop"}'}
    args.update(overrides)
    return host_events.http_api_event(**args)  # type: ignore[arg-type]


def test_http_event_has_the_keys_of_the_aws_sample_and_parses():
    sample = json.loads((EVENTS / "apigw_create_task.json").read_text())
    event = _http()
    assert _keys(event) == _keys(sample)
    model = APIGatewayProxyEventV2Model.model_validate(event)
    assert model.requestContext.http.method == "POST"
    data = APIGatewayProxyEventV2(event)
    assert data.raw_path == "/v1/tasks" and data.json_body == {"operator": "noop"}
    assert data.headers["content-type"] == "application/json"


def test_http_event_joins_repeated_query_values_and_headers_and_splits_cookies():
    event = _http(method="GET", raw_query="status=queued&tag=a&tag=b&empty=", body=b"",
                  headers=[("X-Trace", "1"), ("x-trace", "2"), ("Cookie", "a=1; b=2")])
    data = APIGatewayProxyEventV2(event)
    assert data.query_string_parameters == {"status": "queued", "tag": "a,b", "empty": ""}
    assert data.headers["x-trace"] == "1,2"
    assert data.cookies == ["a=1", "b=2"] and "cookie" not in data.headers
    assert "body" not in event
    APIGatewayProxyEventV2Model.model_validate(event)


def test_a_binary_body_is_base64_encoded():
    event = _http(body=b"\xff\x00\xfe")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"


def test_responses_map_like_http_api_payload_2():
    full = host_events.http_response({"statusCode": 409, "headers": {"content-type": "application/json"},
                                      "cookies": ["s=1"], "body": '{"error": {}}'})
    assert full.status == 409 and ("set-cookie", "s=1") in full.headers and full.body == b'{"error": {}}'
    inferred = host_events.http_response({"hello": "world"})
    assert inferred.status == 200 and json.loads(inferred.body) == {"hello": "world"}
    binary = host_events.http_response({"statusCode": 200, "body": base64.b64encode(b"\x01").decode(),
                                        "isBase64Encoded": True})
    assert binary.body == b"\x01"


def test_scheduled_event_matches_the_sample_and_parses():
    sample = json.loads((EVENTS / "eventbridge_scheduled.json").read_text())
    event = host_events.scheduled_event("trace-lite-lease-reaper")
    assert _keys(event) == _keys(sample)
    model = EventBridgeModel.model_validate(event)
    assert model.detail_type == "Scheduled Event" and model.source == "aws.events"
    assert EventBridgeEvent(event).resources == ["arn:aws:events:us-east-1:123456789012:rule/trace-lite-lease-reaper"]


def _messages() -> list[base.Message]:
    return [
        base.Message("trace-tasks", "17", {"task_id": "9b2d1e1c-6f4a-4b0e-9a55-3c1f7e0d2a11", "attempt": 0},
                     "receipt-1", 1),
        base.Message("trace-tasks", "18", {}, "receipt-2", 3, raw="not a wake-up"),
    ]


def test_sqs_event_matches_the_sample_and_parses():
    sample = json.loads((EVENTS / "sqs_wakeups.json").read_text())
    SqsModel.model_validate(sample)  # the sample itself is what AWS sends
    event = host_events.sqs_event(_messages())
    assert _keys(event) == _keys(sample)
    model = SqsModel.model_validate(event)
    assert [r.messageId for r in model.Records] == ["17", "18"]
    records = list(SQSEvent(event).records)
    assert json.loads(records[0].body) == _messages()[0].body
    assert records[1].body == "not a wake-up"  # an undecodable body reaches the function as it arrived
    assert records[1].attributes.approximate_receive_count == "3"
    assert records[0].md5_of_body == hashlib.md5(records[0].body.encode()).hexdigest()
    assert records[0].event_source_arn == "arn:aws:sqs:us-east-1:123456789012:trace-tasks"


def test_a_powertools_partial_batch_response_names_exactly_the_failed_messages():
    # GIVEN a handler written for AWS with Powertools' batch utility, failing record "18"
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record) -> None:
        if record.body == "not a wake-up":
            raise ValueError("malformed")

    event = host_events.sqs_event(_messages())
    result = process_partial_response(event=event, record_handler=record_handler, processor=processor)
    # THEN the host reads its response as "18 failed, 17 succeeded"
    assert host_events.batch_failures(result, ["17", "18"]) == {"18"}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "17"}]}, {"17"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"identifier": "17"}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "99"}]}, None),
        ({"batchItemFailures": "17"}, None),
    ],
)
def test_batch_failures_follow_lambdas_rules(result, expected):
    """Empty or missing means success; a missing, empty or unknown id fails the whole batch."""
    assert host_events.batch_failures(result, ["17", "18"]) == expected


def test_lambda_context_counts_down():
    context = host_events.LambdaContext("fn", timeout_seconds=5)
    assert 4000 < context.get_remaining_time_in_millis() <= 5000
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:fn"
