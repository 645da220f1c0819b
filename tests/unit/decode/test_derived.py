"""The ingest hook for derived datasets: what Cryo extracts, what is written, and that it is deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trace_core.datasets import naming
from trace_core.ingest import derived, errors

from tests.unit.decode.test_staking import ALICE, _log

NETWORK = "network_10143"


def _write_logs(directory: Path, rows: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / naming.cryo_file_name(NETWORK, "logs", 100, 200)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cryo_extracts_the_sources_of_derived_datasets_once():
    assert derived.cryo_datasets(["staking_events"]) == ["logs"]
    assert derived.cryo_datasets(["blocks", "staking_events", "logs"]) == ["blocks", "logs"]
    assert derived.cryo_datasets(["blocks"]) == ["blocks"]


def test_derive_writes_the_same_bytes_every_time_and_drops_an_unrequested_source(tmp_path: Path):
    rows = [_log(150, 0, "Delegate", [1, ALICE], [2**200, 3]), _log(151, 4, "EpochChanged", [], [1, 2])]
    digests = []
    for attempt in ("a", "b"):
        source = _write_logs(tmp_path / attempt, rows)
        derived.derive(["staking_events"], source.parent, network=NETWORK, start=100, end=200, compression="lz4")
        out = source.parent / naming.cryo_file_name(NETWORK, "staking_events", 100, 200)
        digests.append(_sha(out))
        # logs were not requested: only the derived file is left to stage
        assert sorted(p.name for p in source.parent.iterdir()) == [out.name]
        assert pq.read_table(out).column("amount").to_pylist() == [str(2**200), None]
    # A retry derives byte-identical Parquet, so its manifest digest matches (single publication)
    assert digests[0] == digests[1]


def test_a_requested_source_is_kept(tmp_path: Path):
    source = _write_logs(tmp_path, [_log(150, 0, "Delegate", [1, ALICE], [5, 3])])
    derived.derive(["logs", "staking_events"], tmp_path, network=NETWORK, start=100, end=200, compression="zstd")
    assert source.exists()


def test_an_undecodable_staking_log_fails_the_range_without_retries(tmp_path: Path):
    row = _log(150, 2, "Delegate", [1, ALICE], [5, 3])
    row["data"] = row["data"][:-2]
    _write_logs(tmp_path, [row])
    with pytest.raises(errors.DerivationError) as info:
        derived.derive(["staking_events"], tmp_path, network=NETWORK, start=100, end=200, compression="lz4")
    assert info.value.retryable is False
    assert "log 2 of block 150" in info.value.message and info.value.details["dataset"] == "staking_events"


def test_provenance_names_the_decoder():
    assert derived.provenance("staking_events", "0.3.2") == "0.3.2 + staking_events/1"
    assert derived.provenance("logs", "0.3.2") == "0.3.2"
