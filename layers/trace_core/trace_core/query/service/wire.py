"""Wire models of the Query Service HTTP API (mapped explicitly from the domain, never returned raw)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trace_core.query.service import errors

MAX_SQL_CHARS = 100_000
# The largest body read; anything longer is refused before parsing.
MAX_BODY_BYTES = 1024 * 1024
ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
# The whole body must arrive within this long after the headers (at 1 MiB, about 100 KB/s): a client
# that announces a body and stops sending would otherwise hold its connection and request forever.
BODY_TIMEOUT_S = 10.0


class IncompleteBody(bytes):
    """The part of a body that arrived before the client stopped sending (timed out or disconnected).

    The HTTP layer hands it to the pipeline like any body, so its refusal is audited like any other
    bad body: :func:`parse_request` turns it into the error that says what happened.
    """

    announced: str | None  # the Content-Length header, if any
    waited_s: float | None  # the read timeout that expired; None when the client disconnected

    def __new__(cls, received: bytes, *, announced: str | None, waited_s: float | None) -> Self:
        body = super().__new__(cls, received)
        body.announced, body.waited_s = announced, waited_s
        return body


class QueryRequest(BaseModel):
    """One SQL query over the relations the token grants."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sql: Annotated[str, Field(min_length=1, max_length=MAX_SQL_CHARS, description="One read-only SELECT.")]
    format: Literal["json", "arrow"] = Field(
        default="json", description="`json`: rows inline in the JSON body; `arrow`: an Arrow IPC stream body.")
    export: bool = Field(
        default=False,
        description="Write the result as Parquet to the results bucket and answer with a presigned link "
        "(for results over the inline cap).")
    max_rows: Annotated[int | None, Field(ge=1, description="Cap on rows returned (at most the service's cap).")] = None


class Column(BaseModel):
    name: str
    type: str = Field(description="Arrow type of the column, e.g. int64, string, decimal128(38, 0); "
                      "HUGEINT/UHUGEINT columns needing 39 digits are decimal256(39, 0).")


class ExportLink(BaseModel):
    url: str = Field(description="Presigned GET URL of the Parquet file.")
    bucket: str
    key: str
    expires_at: dt.datetime
    bytes: int


class QueryResponse(BaseModel):
    query_id: uuid.UUID
    columns: list[Column]
    rows: list[list[Any]] | None = Field(
        description="Row values in column order: integers (and integral decimals) as numbers when "
        "|v| <= 2**53 - 1, else as decimal strings; fractional decimals as plain decimal strings; binary as "
        "0x-hex; dates and timestamps as ISO 8601 text, 'infinity' or '-infinity'. Null when exported.")
    row_count: int
    truncated: bool = Field(description="True when more rows matched than max_rows allowed.")
    bytes: int = Field(description="Size of the result as Arrow data.")
    duration_ms: float
    export: ExportLink | None = None


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. token_expired, forbidden_function, timeout.")
    message: str
    query_id: uuid.UUID | None = None
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    error: ErrorDetail


def parse_request(body: bytes) -> QueryRequest:
    """The request body as a QueryRequest, or BadQueryRequestError naming the first bad field."""
    if isinstance(body, IncompleteBody):
        raise _incomplete(body)
    if len(body) > MAX_BODY_BYTES:
        raise errors.BadQueryRequestError(f"body: larger than {MAX_BODY_BYTES} bytes", field="body",
                                          expected=f"at most {MAX_BODY_BYTES} bytes of JSON")
    try:
        return QueryRequest.model_validate_json(body or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        message = first["msg"]
        if first["type"] == "json_invalid":
            field, message = "body", "the body must be a JSON object {\"sql\": \"...\"}"
        raise errors.BadQueryRequestError(f"{field}: {message}", field=field, expected=message) from exc


def _incomplete(body: IncompleteBody) -> errors.BadQueryRequestError:
    announced = f"of the {body.announced} bytes announced " if body.announced else ""
    if body.waited_s is None:
        return errors.BadQueryRequestError(
            f"body: the client disconnected after sending {len(body)} bytes {announced}".rstrip(),
            field="body", expected="the whole body", received_bytes=len(body))
    return errors.BodyTimeoutError(
        f"body: only {len(body)} bytes {announced}arrived within {body.waited_s:g}s; send the whole body "
        "with the request", field="body", expected=f"the whole body within {body.waited_s:g}s",
        received_bytes=len(body), timeout_s=body.waited_s)
