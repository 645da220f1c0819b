"""The sink's wire and domain values: the queue message, the record schemas, staged batches, outcomes.

A queue message is a small pointer, ``{"batch_id": "<uuid>", "sink": "<name>"}``
(invariant 1): the records themselves are staged in Postgres
(``state.sink_batches``) in the publisher's transaction. Records are validated
strictly, as JSON: no unknown top-level fields (extensions go under
``payload``), no coercion (``"1"`` is not an integer), timestamps in RFC 3339
with an offset.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from trace_core.sink import errors

SINK_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MAX_MESSAGE_BYTES = 1024  # a pointer; anything bigger is not one of ours
MAX_DEDUPE_KEY_CHARS = 512

SinkName = Annotated[str, Field(pattern=SINK_NAME_PATTERN, description="a sink name matching ^[a-z][a-z0-9_]{0,62}$")]
# No control characters: keys end up in logs and URLs, and Postgres text cannot hold NUL.
DedupeKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_DEDUPE_KEY_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description=f"a deterministic string of 1 to {MAX_DEDUPE_KEY_CHARS} characters without control characters, "
        "stable across retries (never the attempt or a clock)",
    ),
]
Hash32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]
BatchStatus = Literal["pending", "rejected", "applied"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Record(BaseModel):
    # strict: validated from JSON text, so "1" is not an int and 1.5 not a timestamp.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SinkMessage(_Record):
    """The body of a ``trace-sink`` message: which staged batch to apply, and to which sink."""

    batch_id: uuid.UUID = Field(description="the id of a batch staged in state.sink_batches (a UUID)")
    sink: SinkName


class AlertEventRecord(_Record):
    """One alert event as an evaluation emits it (sink ``alert_events``; docs/specs/sink.md)."""

    dedupe_key: DedupeKey
    alert_definition_id: uuid.UUID = Field(description="the alert definition's UUID")
    event_time: AwareDatetime = Field(description="an RFC 3339 timestamp with a UTC offset, e.g. 2026-01-01T00:00:00Z")
    severity: Literal["info", "warning", "critical"] | None = Field(
        default=None, description="one of info, warning, critical"
    )
    chain_id: Annotated[int, Field(gt=0, le=2**63 - 1)] | None = Field(default=None, description="a positive integer")
    block_number: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = Field(
        default=None, description="a non-negative integer"
    )
    block_hash: Hash32 | None = Field(default=None, description="0x and 64 hex digits (the block's hash)")
    tx_hash: Hash32 | None = Field(default=None, description="0x and 64 hex digits (the transaction's hash)")
    source_dataset_uuid: uuid.UUID | None = Field(default=None, description="a dataset UUID")
    partition_key: Annotated[str, Field(max_length=512)] | None = Field(
        default=None, description="a string of at most 512 characters"
    )
    cursor_value: Annotated[str, Field(max_length=512)] | None = Field(
        default=None, description="a string of at most 512 characters"
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="a JSON object (producer-defined details)")


class OutputRecord(_Record):
    """One record of any other buffered dataset (written to ``data.sink_outputs``)."""

    dedupe_key: DedupeKey
    record: dict[str, Any] = Field(description="a JSON object")


class StagedBatch(_Frozen):
    """A row of ``state.sink_batches``: the buffer the sink applies."""

    batch_id: uuid.UUID
    sink: str
    org_id: uuid.UUID | None
    task_id: uuid.UUID | None
    attempt: int | None
    records: Any  # as stored: the sink validates it again before writing anything
    record_count: int
    status: BatchStatus
    rejections: int
    last_error: str | None
    created_at: dt.datetime
    applied_at: dt.datetime | None


class Applied(_Frozen):
    """What consuming one message did. ``already_applied``: a duplicate message, nothing written."""

    batch_id: uuid.UUID
    sink: str
    records: int
    inserted: int
    duplicates: int
    already_applied: bool = False


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("records", 3, "event_time")`` -> ``records[3].event_time``."""
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(root)"


def expected_of(model: type[BaseModel], error: Any) -> str:
    """What a field accepts, for an error message: the field's description, or pydantic's message."""
    if error["type"] == "extra_forbidden":
        if model is AlertEventRecord:
            return "no such field (producer-defined details go under payload)"
        return "no such field"
    loc = error["loc"]
    field = model.model_fields.get(str(loc[0])) if loc else None
    if field is not None and field.description:
        return field.description
    return str(error["msg"])


def parse_message(body: str) -> SinkMessage:
    """A queue message body as a :class:`SinkMessage`, or MalformedMessageError naming the field."""
    expected = 'a JSON object {"batch_id": "<uuid>", "sink": "<name>"}'
    size = len(body.encode("utf-8", "replace"))
    if size > MAX_MESSAGE_BYTES:
        raise errors.MalformedMessageError(
            f"body: a sink message is a pointer of at most {MAX_MESSAGE_BYTES} bytes, got {size} bytes",
            field="body", expected=expected,
        )
    try:
        return SinkMessage.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] in ("json_invalid", "model_type") or not first["loc"]:
            raise errors.MalformedMessageError(f"body: {first['msg']}; expected {expected}", field="body",
                                               expected=expected) from exc
        field = field_path(first["loc"])
        wanted = expected_of(SinkMessage, first)
        message = "missing" if first["type"] == "missing" else first["msg"]
        raise errors.MalformedMessageError(f"{field}: {message}; expected {wanted}", field=field,
                                           expected=wanted) from exc
