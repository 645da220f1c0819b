"""Facts about a local Parquet file read from its footer: rows and schema, plus size and sha256.

Only the footer is parsed (no column data), and the digest streams the file
in fixed-size blocks, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trace_core.datasets import errors, naming

_BLOCK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ParquetInfo:
    size: int
    sha256: str
    row_count: int
    schema_hash: str


def schema_hash(schema: pa.Schema) -> str:
    """sha256 over the ordered (name, Arrow type, nullable) of each column; metadata is ignored."""
    fields = [[f.name, str(f.type), bool(f.nullable)] for f in schema]
    return naming.sha256_hex(naming.canonical_json(fields))


def file_sha256(path: Path) -> tuple[int, str]:
    """``(size, sha256)`` of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def inspect(path: Path) -> ParquetInfo:
    """Row count and schema hash from the footer, size and sha256 from the bytes."""
    try:
        parquet = pq.ParquetFile(path)
        rows = parquet.metadata.num_rows
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as exc:
        raise errors.InvalidDatasetInputError(
            f"{path} is not a readable Parquet file: {exc}", field="path", expected="a Parquet file"
        ) from exc
    size, digest = file_sha256(path)
    return ParquetInfo(size=size, sha256=digest, row_count=rows, schema_hash=schema_hash(schema))
