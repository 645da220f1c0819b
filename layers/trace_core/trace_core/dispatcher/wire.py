"""Wire models of the Dispatcher API (requests and responses), mapped explicitly to the domain models.

Kept apart from :mod:`trace_core.dispatcher.models` so the HTTP contract
(docs/openapi/dispatcher.json) changes only when these change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool

from trace_core import platform
from trace_core.dispatcher import models

_REQUEST = ConfigDict(frozen=True, extra="forbid")
_RESPONSE = ConfigDict(frozen=True)

Reason = Annotated[str, Field(min_length=1, max_length=10_000)]
# Request integers are JSON integers only (no "3", no true, no 3.0), and bounded (the columns are Postgres integers).
MAX_ATTEMPT = 100  # an attempt never exceeds the task's max_attempts, itself at most 100
MaxAttempts = Annotated[models.MaxAttempts, Strict()]
BackoffBaseMs = Annotated[models.BackoffBaseMs, Strict()]
LeaseSeconds = Annotated[models.LeaseSeconds, Strict()]
Attempt = Annotated[models.Attempt, Strict(), Field(le=MAX_ATTEMPT)]
Limit = Annotated[int, Strict(), Field(ge=1, le=100)]


class CreateTaskRequest(BaseModel):
    """Create a task. Repeating a request with the same ``idempotency_key`` returns the same task."""

    model_config = _REQUEST

    operator: models.Operator
    payload: models.JsonObject = Field(default_factory=dict)
    idempotency_key: models.IdempotencyKey | None = None
    job_id: UUID | None = None
    max_attempts: MaxAttempts = 3
    backoff_base_ms: BackoffBaseMs = 1000
    queue: models.QueueName = platform.TASK_QUEUE


class ClaimRequest(BaseModel):
    model_config = _REQUEST

    worker_id: models.WorkerId
    lease_seconds: LeaseSeconds = 30


class ClaimNextRequest(BaseModel):
    """Claim up to ``limit`` due tasks (polling without a wake-up)."""

    model_config = _REQUEST

    worker_id: models.WorkerId
    operators: list[models.Operator] | None = Field(default=None, max_length=100)
    queue: models.QueueName | None = None
    lease_seconds: LeaseSeconds = 30
    limit: Limit = 1


class HeartbeatRequest(BaseModel):
    model_config = _REQUEST

    attempt: Attempt
    lease_token: UUID
    lease_seconds: LeaseSeconds = 30


class SuccessResult(BaseModel):
    model_config = _REQUEST

    outcome: Literal["success"]
    outputs: models.JsonObject = Field(default_factory=dict)


class FailureResult(BaseModel):
    model_config = _REQUEST

    outcome: Literal["failure"]
    error: Annotated[str, Field(min_length=1, max_length=10_000)]
    retryable: StrictBool = True


class CompleteRequest(BaseModel):
    """Finish the live attempt. A repeat of an applied completion answers with the task unchanged."""

    model_config = _REQUEST

    attempt: Attempt
    lease_token: UUID
    result: Annotated[SuccessResult | FailureResult, Field(discriminator="outcome")]


class AbandonRequest(BaseModel):
    """Give the lease back (worker shutdown); the task is retried at once if attempts are left."""

    model_config = _REQUEST

    attempt: Attempt
    lease_token: UUID
    reason: Reason


class TaskResponse(BaseModel):
    model_config = _RESPONSE

    task_id: UUID
    job_id: UUID | None
    operator: str
    payload: dict[str, Any]
    idempotency_key: str | None
    queue: str
    status: models.Status
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


class LeaseResponse(BaseModel):
    """Present ``attempt`` and ``lease_token`` on every heartbeat and on completion."""

    model_config = _RESPONSE

    task: TaskResponse
    attempt: int
    lease_token: UUID
    lease_expires_at: datetime


class TaskListResponse(BaseModel):
    model_config = _RESPONSE

    tasks: list[TaskResponse]


class LeaseListResponse(BaseModel):
    model_config = _RESPONSE

    leases: list[LeaseResponse]


class ErrorBody(BaseModel):
    model_config = _RESPONSE

    code: str = Field(description="Machine-readable: invalid_request (422), malformed_body (400), "
                                  "body_too_large (413), unsupported_media_type (415), task_not_found, "
                                  "not_claimable, stale_attempt, lease_expired, unavailable, not_found.")
    message: str
    field: str | None = Field(default=None, description="The offending field, dotted (`result.error`, "
                              "`payload.items.3`): `body` for the body as a whole, `content-type` for its type.")
    current_attempt: int | None = Field(default=None, description="The task's live attempt (for 409s).")
    status: str | None = Field(default=None, description="The task's status (for not_claimable).")


class ErrorResponse(BaseModel):
    model_config = _RESPONSE

    error: ErrorBody


def to_create(body: CreateTaskRequest) -> models.CreateTask:
    return models.CreateTask(
        operator=body.operator,
        payload=body.payload,
        idempotency_key=body.idempotency_key,
        job_id=body.job_id,
        max_attempts=body.max_attempts,
        backoff_base_ms=body.backoff_base_ms,
        queue=body.queue,
    )


def to_result(result: SuccessResult | FailureResult) -> models.Success | models.Failure:
    if isinstance(result, SuccessResult):
        return models.Success(outputs=result.outputs)
    return models.Failure(error=result.error, retryable=result.retryable)


def task_response(task: models.Task) -> TaskResponse:
    return TaskResponse.model_validate(task.model_dump())


def lease_response(lease: models.Lease) -> LeaseResponse:
    return LeaseResponse(
        task=task_response(lease.task),
        attempt=lease.attempt,
        lease_token=lease.lease_token,
        lease_expires_at=lease.lease_expires_at,
    )
