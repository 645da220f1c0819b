"""Shaping results: JSON rows, Arrow IPC streams, and Parquet exports to the results bucket."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import io
import math
import uuid
from typing import Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trace_core.query.service import errors, temporal

# Integers beyond this lose precision in JavaScript clients: they travel as strings.
MAX_SAFE_INTEGER = 2**53 - 1
LINK_TTL = dt.timedelta(hours=1)


def json_value(value: Any) -> Any:
    """One Arrow value as JSON: exact (no float rounding of decimals or big integers), binary as 0x-hex."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        # HUGEINT sums arrive as decimal(38, 0): integral values follow the integer rule.
        if value.is_finite() and value == value.to_integral_value():
            return json_value(int(value))
        return format(value, "f")  # plain digits: str() would write 0E-10 or 1.000E-7
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def json_rows(table: pa.Table) -> list[list[Any]]:
    columns = [_json_column(column) for column in table.columns]
    return [list(row) for row in zip(*columns)] if columns else []


def _json_column(column: pa.ChunkedArray) -> list[Any]:
    """A column's values by :func:`json_value`'s rules, choosing the conversion once per column by type."""
    kind = column.type
    if pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return cast(list[Any], column.to_pylist())
    if pa.types.is_integer(kind) and _within_safe_integers(column):
        return cast(list[Any], column.to_pylist())
    if pa.types.is_decimal(kind) and kind.scale == 0 and _within_safe_integers(column):
        return cast(list[Any], column.cast(pa.int64()).to_pylist())  # exact: integral and within 2**53
    if temporal.is_temporal(kind):
        return temporal.json_values(column)  # infinities and years Python's datetime cannot hold
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return [None if v is None else "0x" + v.hex() for v in column.to_pylist()]
    if pa.types.is_nested(kind):
        try:
            return [json_value(v) for v in column.to_pylist()]
        except (OverflowError, ValueError):  # a date or timestamp inside that Python cannot hold
            return [value for chunk in column.chunks for value in _json_nested(chunk)]
    return [json_value(v) for v in column.to_pylist()]


def _json_nested(array: pa.Array) -> list[Any]:
    """A nested array's values level by level, each leaf by :func:`_json_column` (so by type, never via Python)."""
    kind = array.type
    valid = array.is_valid().to_pylist()
    if pa.types.is_struct(kind):
        names = [kind.field(i).name for i in range(kind.num_fields)]
        fields = [_json_nested(child) for child in array.flatten()]
        return [dict(zip(names, [f[i] for f in fields], strict=True)) if ok else None for i, ok in enumerate(valid)]
    if pa.types.is_fixed_size_list(kind):
        size = kind.list_size
        flat = _json_nested(array.values.slice(array.offset * size, len(array) * size))
        return [flat[i * size:(i + 1) * size] if ok else None for i, ok in enumerate(valid)]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_map(kind):
        offsets = array.offsets.to_pylist()
        start, stop = offsets[0], offsets[-1]
        if pa.types.is_map(kind):  # as to_pylist() then json_value give it: a list of [key, value] pairs
            keys = _json_nested(array.keys.slice(start, stop - start))
            items = _json_nested(array.items.slice(start, stop - start))
            values: list[Any] = [[k, v] for k, v in zip(keys, items, strict=True)]
        else:
            values = _json_nested(array.values.slice(start, stop - start))
        return [values[offsets[i] - start:offsets[i + 1] - start] if ok else None for i, ok in enumerate(valid)]
    return _json_column(pa.chunked_array([array], type=kind))


def _within_safe_integers(column: pa.ChunkedArray) -> bool:
    if (pa.types.is_integer(column.type) and column.type.bit_width <= 32) or column.null_count == len(column):
        return True
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return bool(low >= -MAX_SAFE_INTEGER and high <= MAX_SAFE_INTEGER)


def columns(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": field.name, "type": str(field.type)} for field in table.schema]


def arrow_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def export_key(org_id: uuid.UUID | None, query_id: uuid.UUID) -> str:
    """``results/{org}/{query_id}.parquet`` (``system`` for tasks outside any org)."""
    return f"results/{org_id or 'system'}/{query_id}.parquet"


@dataclasses.dataclass(frozen=True)
class Exported:
    bucket: str
    key: str
    url: str
    expires_at: dt.datetime
    bytes: int


class ResultsExporter(Protocol):
    def export(self, table: pa.Table, *, org_id: uuid.UUID | None, query_id: uuid.UUID) -> Exported:
        """Store ``table`` as Parquet and return a link to it."""


class S3ResultsExporter:
    """Parquet to the results bucket, linked by a presigned GET URL (AWS, moto server, LocalStack)."""

    def __init__(self, s3_client: Any, bucket: str, *, link_ttl: dt.timedelta = LINK_TTL) -> None:
        self._s3 = s3_client
        self.bucket = bucket
        self._ttl = link_ttl

    def export(self, table: pa.Table, *, org_id: uuid.UUID | None, query_id: uuid.UUID) -> Exported:
        key = export_key(org_id, query_id)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        size = buffer.tell()
        buffer.seek(0)
        try:
            self._s3.upload_fileobj(buffer, self.bucket, key,
                                    ExtraArgs={"ContentType": "application/vnd.apache.parquet"})
            url = self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(self._ttl.total_seconds())
            )
        except Exception as exc:  # boto3 upload and client errors
            raise errors.ExportError(f"writing the result to s3://{self.bucket}/{key} failed: {exc}", key=key) from exc
        return Exported(bucket=self.bucket, key=key, url=url, bytes=size,
                        expires_at=dt.datetime.now(dt.UTC) + self._ttl)
