"""The chain sync benchmark's results check reads Parquet files and compares their content, not their counts."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench import chain_sync_e2e, method


def _logs(path: Path, rows: list[tuple[int, str, int]]) -> Path:
    numbers, hashes, indexes = (list(c) for c in zip(*rows, strict=True))
    pq.write_table(pa.table({"block_number": pa.array(numbers, pa.uint32()), "transaction_hash": hashes,
                             "log_index": pa.array(indexes, pa.uint32()), "data": ["0x"] * len(rows)}), path)
    return path


def test_the_same_rows_split_differently_have_the_same_content(tmp_path: Path) -> None:
    # GIVEN the same logs written as one file and as two files in another order (as Trace's ranges split them)
    rows = [(1, "0xa", 0), (1, "0xa", 1), (2, "0xb", 0)]
    whole = chain_sync_e2e.content({"logs": [_logs(tmp_path / "whole.parquet", rows)]})
    split = chain_sync_e2e.content({"logs": [_logs(tmp_path / "b.parquet", rows[2:]),
                                             _logs(tmp_path / "a.parquet", rows[:2])]})
    # THEN the check finds nothing to report
    assert method.content_mismatches(whole, split) == []
    assert whole["logs"]["rows"] == 3 and whole["logs"]["sums"] == {"block_number": 4}


def test_a_changed_key_fails_the_check_though_the_counts_agree(tmp_path: Path) -> None:
    # GIVEN two answers with the same row count and block numbers, one log index differing
    good = chain_sync_e2e.content({"logs": [_logs(tmp_path / "good.parquet", [(1, "0xa", 0), (2, "0xb", 0)])]})
    bad = chain_sync_e2e.content({"logs": [_logs(tmp_path / "bad.parquet", [(1, "0xa", 1), (2, "0xb", 0)])]})
    # THEN the check names the dataset and the keys
    assert [p.split(" ")[:2] for p in method.content_mismatches(good, bad)] == [["logs:", "keys"]]
