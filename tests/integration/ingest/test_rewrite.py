"""rewrite: Cryo's file replaced by the same rows, row groups and schema, with footers that count NULLs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trace_core.ingest import errors, rewrite


def test_the_rewrite_keeps_rows_schema_and_row_groups_and_counts_nulls(tmp_path: Path):
    # GIVEN a file of two row groups without statistics, whose string column holds NULLs
    path = tmp_path / "seeded__logs__00000000_to_00000009.parquet"
    table = pa.table({"block_number": pa.array(range(10), pa.uint32()),
                      "topic3": pa.array([None if i % 3 else f"0x{i:02x}" for i in range(10)], pa.large_string())})
    pq.write_table(table, path, row_group_size=5, write_statistics=False)
    # WHEN rewritten
    rewrite.rewrite(path, compression="uncompressed")
    # THEN the rows and schema are the same, in the same row groups, and each footer counts its NULLs
    written = pq.ParquetFile(path)
    assert written.read().equals(table) and written.schema_arrow == table.schema
    groups = [written.metadata.row_group(i) for i in range(written.num_row_groups)]
    assert [g.num_rows for g in groups] == [5, 5]
    assert [g.column(1).statistics.null_count for g in groups] == [3, 3]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_file_that_is_not_parquet_fails_the_attempt_naming_it(tmp_path: Path):
    # GIVEN a torn file where Cryo's output should be
    path = tmp_path / "seeded__blocks__00000000_to_00000009.parquet"
    path.write_bytes(b"PAR1 torn")
    # WHEN rewritten THEN a retryable ExtractError names the file, and no temporary file is left
    with pytest.raises(errors.ExtractError, match=path.name) as raised:
        rewrite.rewrite(path, compression="lz4")
    assert raised.value.retryable and raised.value.details["reason"] == "rewrite failed"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
