"""The sink's rules, pure: where a sink's rows go, whether a batch is valid, what a message asks for.

One message is one batch, and a batch is the unit of atomicity: it is written
whole or not at all. :func:`plan` validates every record of a batch (all
problems are collected, the first few reported) and normalises them into rows;
any problem rejects the whole batch. Within a batch, exact duplicates collapse
to one row, and two records that share a dedupe key but differ are a producer
bug that rejects the batch (it would otherwise lose one of them silently).
Across batches the first row written for a dedupe key wins (``ON CONFLICT DO
NOTHING``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from trace_core.sink import errors, models

ALERT_EVENTS = "alert_events"
Target = Literal["alert_events", "sink_outputs"]

MAX_BATCH_RECORDS = 1000
MAX_RECORD_BYTES = 64 * 1024
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_PROBLEMS = 20
MAX_DEPTH = 32


@dataclasses.dataclass(frozen=True)
class Plan:
    """A valid batch as rows for its target table. ``collapsed``: exact in-batch duplicates dropped."""

    sink: str
    target: Target
    rows: tuple[dict[str, Any], ...]
    collapsed: int = 0


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with a message's batch: apply it, or nothing (it was applied before)."""

    batch: models.StagedBatch
    apply: bool


def check_sink(sink: object, field: str = "sink") -> str:
    """``sink`` if it is a valid sink name, else InvalidSinkInputError naming ``field``."""
    expected = "a sink name matching ^[a-z][a-z0-9_]{0,62}$ (e.g. alert_events)"
    if not isinstance(sink, str) or not re.fullmatch(models.SINK_NAME_PATTERN, sink):
        raise errors.InvalidSinkInputError(f"{field}: got {sink!r}; expected {expected}", field=field,
                                           expected=expected)
    return sink


def target_of(sink: str) -> Target:
    """The table a sink writes: ``alert_events`` is typed, every other sink shares ``sink_outputs``."""
    return "alert_events" if sink == ALERT_EVENTS else "sink_outputs"


def record_model(sink: str) -> type[BaseModel]:
    return models.AlertEventRecord if target_of(sink) == "alert_events" else models.OutputRecord


def _problem(field: str, expected: str, message: str) -> dict[str, str]:
    return {"field": field, "expected": expected, "message": f"{field}: {message}"}


def _json_text(value: Any) -> str:
    # allow_nan=False: NaN and Infinity are not JSON, and jsonb refuses them.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _scan(value: Any) -> tuple[str, str] | None:
    """The first reason ``value`` cannot be stored as jsonb, as (expected, message), or None.

    Iterative, so a hostile nesting depth cannot exhaust the stack before it is refused.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"JSON nested at most {MAX_DEPTH} levels deep", f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, str):
            if "\x00" in item:  # jsonb cannot hold U+0000
                return "strings without U+0000", "a string holds U+0000, which Postgres cannot store"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "finite numbers only", "NaN or Infinity is not JSON"
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return "JSON object keys (strings)", f"a {type(key).__name__} key"
                stack.extend(((key, depth + 1), (child, depth + 1)))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif item is not None and not isinstance(item, (bool, int)):
            return "JSON values only", f"a {type(item).__name__} is not JSON"
    return None


def _row(sink: str, record: BaseModel) -> dict[str, Any]:
    row = record.model_dump(mode="json")
    if sink == ALERT_EVENTS:
        for key in ("block_hash", "tx_hash"):
            if row[key] is not None:
                row[key] = row[key].lower()
    return row


def _validate(sink: str, index: int, raw: Any) -> tuple[dict[str, Any] | None, list[dict[str, str]]]:
    prefix = f"records[{index}]"
    model = record_model(sink)
    if not isinstance(raw, dict):
        return None, [_problem(prefix, "a JSON object", f"got {type(raw).__name__}")]
    unstorable = _scan(raw)
    if unstorable is not None:
        return None, [_problem(prefix, *unstorable)]
    text = _json_text(raw)
    if len(text.encode()) > MAX_RECORD_BYTES:
        return None, [_problem(prefix, f"at most {MAX_RECORD_BYTES} bytes of JSON",
                               f"{len(text.encode())} bytes of JSON")]
    try:
        record = model.model_validate_json(text)
    except ValidationError as exc:
        found = []
        for error in exc.errors():
            field = models.field_path(error["loc"], prefix)
            message = "missing" if error["type"] == "missing" else (
                "unknown field" if error["type"] == "extra_forbidden" else error["msg"])
            found.append(_problem(field, models.expected_of(model, error), message))
        return None, found
    return _row(sink, record), []


def plan(sink: str, records: object) -> Plan:
    """Validate a whole batch for ``sink`` into rows, or raise InvalidBatchError listing its problems."""
    check_sink(sink)
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise errors.InvalidBatchError(
            f"records: got {type(records).__name__}; expected a JSON array of records",
            field="records", expected="a JSON array of records",
            problems=[_problem("records", "a JSON array of records", f"got {type(records).__name__}")],
        )
    if not 1 <= len(records) <= MAX_BATCH_RECORDS:
        expected = f"1 to {MAX_BATCH_RECORDS} records"
        raise errors.InvalidBatchError(
            f"records: got {len(records)} records; expected {expected}", field="records", expected=expected,
            problems=[_problem("records", expected, f"{len(records)} records")],
        )
    problems: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    first_of: dict[str, tuple[int, str]] = {}
    collapsed = 0
    size = 0
    for index, raw in enumerate(records):
        row, found = _validate(sink, index, raw)
        problems.extend(found)
        if row is None:
            continue
        canonical = json.dumps(row, sort_keys=True, separators=(",", ":"))
        size += len(canonical.encode())
        key = row["dedupe_key"]
        if key in first_of:
            first_index, seen = first_of[key]
            if seen == canonical:
                collapsed += 1
                continue
            problems.append(_problem(
                f"records[{index}].dedupe_key", "a dedupe key used by one distinct record per batch",
                f"{key!r} repeats records[{first_index}].dedupe_key with different content",
            ))
            continue
        first_of[key] = (index, canonical)
        rows.append(row)
    if size > MAX_BATCH_BYTES and not problems:
        problems.append(_problem("records", f"at most {MAX_BATCH_BYTES} bytes of records", f"{size} bytes"))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise errors.InvalidBatchError(
            f"{first['message']}; expected {first['expected']}{more}",
            field=first["field"], expected=first["expected"], problems=problems[:MAX_PROBLEMS],
        )
    return Plan(sink=sink, target=target_of(sink), rows=tuple(rows), collapsed=collapsed)


def decide(message: models.SinkMessage, batch: models.StagedBatch | None) -> Decision:
    """Check a message against the batch it points at (BatchNotFoundError, MalformedMessageError)."""
    if batch is None:
        raise errors.BatchNotFoundError(message.batch_id)
    if batch.sink != message.sink:
        expected = f"the staged batch's sink {batch.sink!r}"
        raise errors.MalformedMessageError(
            f"sink: the message names {message.sink!r} but batch {batch.batch_id} is for {batch.sink!r}",
            field="sink", expected=expected,
        )
    return Decision(batch=batch, apply=batch.status != "applied")
