"""The cryo_ingest payload: validation names the field, and sub-ranges tile the range end-exclusively."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trace_core.ingest import errors, request

RPC = {"urls": ["http://127.0.0.1:8545"]}


def payload(**overrides: object) -> dict[str, object]:
    return {"chain_id": 10143, "datasets": ["blocks"], "range_start": 0, "range_end": 100, "rpc": RPC, **overrides}


def test_minimal_payload_gets_defaults():
    parsed = request.parse(payload(namespace="monad_local"))
    assert parsed.key_for("blocks") == "monad_local/blocks"
    assert parsed.rpc.max_blocks_per_logs_request == 1000
    assert parsed.effective_config_hash == parsed.extract.config_hash()


def test_the_planners_payload_shape_is_accepted():
    # GIVEN the payload the chain-sync planner writes WHEN parsed THEN its keys and config hash are used as given
    parsed = request.parse(payload(
        datasets=["logs"], dataset_keys={"logs": "monad-dev/logs"}, config_hash="00112233aabbccdd",
        rpc={"urls": ["http://a:1", "http://b:2"], "requests_per_second": 50, "max_concurrent_requests": 8,
             "max_blocks_per_logs_request": 10},
        sync={"job_id": "x", "range_id": 1, "generation": 0},
    ))
    assert parsed.key_for("logs") == "monad-dev/logs"
    assert parsed.effective_config_hash == "00112233aabbccdd"
    assert [parsed.rpc.url_for(n) for n in (1, 2, 3)] == ["http://a:1", "http://b:2", "http://a:1"]


def test_a_task_of_several_datasets_keeps_each_datasets_config_hash():
    # GIVEN the planner's payload for one range of two datasets, a config hash each
    parsed = request.parse(payload(datasets=["blocks", "logs"],
                                   config_hashes={"blocks": "00112233aabbccdd", "logs": "ffeeddccbbaa0099"}))
    # THEN each dataset's version uses its own hash, as a task of that dataset alone would
    assert parsed.config_hash_for("blocks") == "00112233aabbccdd"
    assert parsed.config_hash_for("logs") == "ffeeddccbbaa0099"
    # and a dataset without one falls back to config_hash, then to the extract options' hash
    assert request.parse(payload(datasets=["blocks", "logs"], config_hashes={"logs": "ffeeddccbbaa0099"})
                         ).config_hash_for("blocks") == request.ExtractOptions().config_hash()


@pytest.mark.parametrize("overrides,field,fragment", [
    ({"range_end": 0}, "(payload)", "end-exclusive"),
    ({"range_end": 100, "range_start": 100}, "(payload)", "end-exclusive"),
    ({"datasets": ["blocks", "blocks"]}, "datasets", "repeat"),
    ({"datasets": ["state_diffs"]}, "datasets", "expected one of"),
    ({"datasets": []}, "datasets", "at least 1"),
    ({"rpc": {"urls": ["ftp://x"]}}, "rpc.urls.0", "pattern"),
    ({"rpc": {"urls": []}}, "rpc.urls", "at least 1"),
    ({"rpc": {**RPC, "max_blocks_per_logs_request": 0}}, "rpc.max_blocks_per_logs_request", "greater than 0"),
    ({"config_hash": "NOT-HEX"}, "config_hash", "pattern"),
    ({"chain_id": 0}, "chain_id", "greater than 0"),
    ({"extract": {"compression": "brotli"}}, "extract.compression", "lz4"),
    ({"surprise": 1}, "surprise", "unknown field"),
    ({"dataset_keys": {"logs": "x/logs"}}, "(payload)", "not in datasets"),
    ({"dataset_keys": {"blocks": "x/logs"}}, "(payload)", "must end with /blocks"),
    ({"config_hashes": {"logs": "00112233aabbccdd"}}, "(payload)", "not in datasets"),
    ({"config_hashes": {"blocks": "NOT-HEX"}}, "config_hashes.blocks", "pattern"),
])
def test_bad_payloads_are_refused_naming_the_field(overrides, field, fragment):
    with pytest.raises(errors.InvalidIngestRequestError) as caught:
        request.parse(payload(**overrides))
    assert caught.value.details["field"] == field
    assert fragment in str(caught.value)
    assert caught.value.retryable is False


def test_trace_datasets_are_refused_up_front_for_a_pool_without_trace_api():
    # Monad serves no trace_*: traces and native_transfers cannot be extracted there.
    with pytest.raises(errors.UnsupportedDatasetError, match="geth_calls") as caught:
        request.parse(payload(datasets=["blocks", "traces", "native_transfers"],
                              rpc={**RPC, "trace_api": False}))
    assert "traces, native_transfers" in str(caught.value)
    assert request.parse(payload(datasets=["geth_calls", "logs"], rpc={**RPC, "trace_api": False}))


def test_extract_options_change_the_config_hash_and_rpc_limits_do_not():
    base = request.parse(payload())
    assert request.parse(payload(extract={"hex": False})).effective_config_hash != base.effective_config_hash
    assert request.parse(payload(extract={"chunk_blocks": 500})).effective_config_hash != base.effective_config_hash
    assert request.parse(payload(rpc={**RPC, "requests_per_second": 5})).effective_config_hash == (
        base.effective_config_hash)


def test_subranges_align_to_chunk_multiples():
    assert request.subranges(1500, 3500, 1000) == [(1500, 2000), (2000, 3000), (3000, 3500)]
    assert request.subranges(0, 1, 1000) == [(0, 1)]
    assert request.subranges(0, 2000, 1000) == [(0, 1000), (1000, 2000)]


@given(st.integers(0, 10**7), st.integers(1, 10**5), st.integers(1, 5000))
def test_subranges_tile_the_range_exactly(start, length, chunk):
    # GIVEN any range and chunk size WHEN split THEN pieces are contiguous, non-empty, within one aligned chunk
    end = start + length
    pieces = request.subranges(start, end, chunk)
    assert pieces[0][0] == start and pieces[-1][1] == end
    for (_, b), (c, _) in itertools.pairwise(pieces):
        assert b == c
    for a, b in pieces:
        assert a < b and (b - a) <= chunk and a // chunk == (b - 1) // chunk
