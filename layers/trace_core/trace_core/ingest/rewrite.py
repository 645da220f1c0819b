"""Rewrite a Cryo Parquet file with pyarrow, so its footer statistics tell the truth.

Cryo 0.3.2 writes through its bundled Polars, which records ``null_count = 0``
for string columns that hold NULLs (``logs.topic3``, ``transactions.to_address``
of a contract creation, most ``traces`` columns with ``hex: true``). DuckDB
trusts the footer: ``where col is null`` answers 0 and grouping or ordering on
such a column reads garbage ("Invalid unicode ... in value construction").
No newer Cryo is published, and ``cryo.collect`` (frames instead of files)
needs the polars package and one extraction pass per dataset, so every file
Cryo writes is rewritten here before it is staged. See
docs/decisions/1404-truthful-parquet-statistics.md.

The copy goes one row group at a time (memory bounded by a row group, as the
extraction promises) and keeps Cryo's row-group layout, schema and columns.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trace_core.ingest import errors

# pyarrow's names for the compressions ExtractOptions allows.
_COMPRESSION = {"lz4": "lz4", "zstd": "zstd", "snappy": "snappy", "gzip": "gzip", "uncompressed": "none"}


def pyarrow_compression(name: str) -> str:
    """pyarrow's name for an ``ExtractOptions.compression`` value."""
    return _COMPRESSION.get(name, name)


def rewrite(path: Path, *, compression: str) -> None:
    """Replace ``path`` by the same rows written by pyarrow with full statistics (atomic on one filesystem).

    Raises :class:`~trace_core.ingest.errors.ExtractError` (retryable: a full disk or a torn Cryo file
    may not recur) when the file cannot be read or written.
    """
    tmp = path.with_name(path.name + ".rewrite")
    try:
        with pq.ParquetFile(path) as source, pq.ParquetWriter(
            tmp, source.schema_arrow, compression=pyarrow_compression(compression), write_statistics=True,
        ) as writer:
            for index in range(source.num_row_groups):
                writer.write_table(source.read_row_group(index))
        os.replace(tmp, path)
    except (OSError, pa.ArrowException) as exc:
        tmp.unlink(missing_ok=True)
        raise errors.ExtractError(
            f"cannot rewrite cryo's {path.name} with true statistics: {type(exc).__name__}: {exc}",
            reason="rewrite failed",
        ) from exc
