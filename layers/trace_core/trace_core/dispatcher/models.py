"""Domain values of the dispatcher: requests to the core, task rows, leases and attempt results.

All frozen with ``extra="forbid"``. Wire models of the HTTP API live in
:mod:`trace_core.dispatcher.wire` and are mapped to these explicitly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from trace_core import platform
from trace_core.dispatcher import errors

# Bounds shared with the wire models, so the API and the core accept the same values.
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_LEASE_SECONDS = 3600
MAX_BACKOFF_BASE_MS = 3_600_000

Operator = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.:-]{0,99}$", description="Operator name, e.g. `noop`.")]
QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,80}$", description="Queue the wake-ups go to.")]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=255)]
MaxAttempts = Annotated[int, Field(ge=1, le=100)]
BackoffBaseMs = Annotated[int, Field(ge=0, le=MAX_BACKOFF_BASE_MS)]
LeaseSeconds = Annotated[int, Field(gt=0, le=MAX_LEASE_SECONDS)]
WorkerId = Annotated[str, Field(min_length=1, max_length=200)]
Attempt = Annotated[int, Field(ge=1)]
Status = Literal["queued", "running", "completed", "failed", "dead"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "dead"})

_FROZEN = ConfigDict(frozen=True, extra="forbid")


MAX_JSON_DEPTH = 64


def storable_text(value: str, *, where: str = "string") -> str:
    """``value`` if Postgres can store it as text or in jsonb: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise ValueError(f"{where} contains a NUL character (\\u0000), which Postgres cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{where} is not valid Unicode (lone surrogate at index {exc.start})") from exc
    return value


def check_json_value(value: Any, *, path: str = "$") -> None:
    """Raise ValueError, naming the path, unless ``value`` is JSON that Postgres stores as it is:
    finite numbers only (no NaN or Infinity), storable strings and keys, at most MAX_JSON_DEPTH levels."""
    stack: list[tuple[Any, str, int]] = [(value, path, 1)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"{where}: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{where}: {item!r} is not a JSON number (only finite numbers are stored)")
        elif isinstance(item, str):
            storable_text(item, where=where)
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"{where}: object key {key!r} is not a string")  # noqa: TRY004 - pydantic wants ValueError
                storable_text(key, where=f"{where} key {key[:40]!r}")
                stack.append((child, f"{where}.{key[:40]}", depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        else:
            raise ValueError(f"{where}: {type(item).__name__} is not a JSON value")  # noqa: TRY004 - as above


def check_payload_size(value: dict[str, Any]) -> dict[str, Any]:
    """Payloads and outputs are stored in Postgres (jsonb) and read on every claim: storable, and small."""
    check_json_value(value)
    size = len(json.dumps(value, separators=(",", ":"), allow_nan=False).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload is {size} bytes; at most {MAX_PAYLOAD_BYTES} bytes of JSON are accepted")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_payload_size)]


class CreateTask(BaseModel):
    """A request to create a task. With an ``idempotency_key``, repeating it returns the same task."""

    model_config = _FROZEN

    operator: Operator
    payload: JsonObject = Field(default_factory=dict)
    idempotency_key: IdempotencyKey | None = None
    job_id: UUID | None = None
    max_attempts: MaxAttempts = 3
    backoff_base_ms: BackoffBaseMs = 1000
    queue: QueueName = platform.TASK_QUEUE


class Task(BaseModel):
    """One row of ``state.tasks``."""

    model_config = _FROZEN

    task_id: UUID
    job_id: UUID | None
    operator: str
    payload: dict[str, Any]
    idempotency_key: str | None
    queue: str
    status: Status
    attempt: int
    max_attempts: int
    backoff_base_ms: int
    lease_expires_at: datetime | None
    not_before: datetime
    outputs: dict[str, Any] | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Task:
        """The task in a ``state.tasks`` row (extra columns, such as a lease token, are ignored)."""
        return cls.model_validate({name: row[name] for name in _TASK_FIELDS})


_TASK_FIELDS = tuple(Task.model_fields)


class Lease(BaseModel):
    """A claimed attempt: the worker presents ``attempt`` and ``lease_token`` on every later call."""

    model_config = _FROZEN

    task: Task
    attempt: int
    lease_token: UUID
    lease_expires_at: datetime


class Success(BaseModel):
    """The attempt succeeded; ``outputs`` become the task's outputs."""

    model_config = _FROZEN

    outputs: JsonObject = Field(default_factory=dict)


class Failure(BaseModel):
    """The attempt failed. A retryable failure is retried while attempts are left."""

    model_config = _FROZEN

    error: Annotated[str, Field(min_length=1, max_length=10_000), AfterValidator(storable_text)]
    retryable: bool = True


class Completion(BaseModel):
    """One item of :func:`trace_core.dispatcher.tasks.complete_many`."""

    model_config = _FROZEN

    task_id: UUID
    attempt: Attempt
    lease_token: UUID
    result: Success | Failure


def parse(model: type[BaseModel], data: Mapping[str, Any]) -> Any:
    """Validate ``data`` into ``model``, or raise InvalidTaskError naming the first bad field."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "?"
        raise errors.InvalidTaskError(f"{field}: {first['msg']}", field=field, expected=first["msg"]) from exc
