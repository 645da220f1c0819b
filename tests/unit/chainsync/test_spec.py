from __future__ import annotations

from pathlib import Path

import pytest
from trace_core.chainsync import errors, spec

ROOT = Path(__file__).resolve().parents[3]
ENV = {"TRACE_RPC_URL": "http://127.0.0.1:8545", "MONAD_TESTNET_RPC_URL": "https://rpc.example/monad"}

VALID = """
name: monad-local
chain_id: 10143
rpc: {urls: ["${TRACE_RPC_URL}"]}
datasets: [blocks, transactions]
mode: {type: fixed_target, from_block: 0, to_block: 100}
chunk_size: 10
"""


@pytest.mark.parametrize("name", ["chain_sync.local.yaml", "chain_sync.monad-testnet.yaml"])
def test_examples_are_valid(name):
    parsed = spec.parse((ROOT / "examples" / name).read_text(), environ=ENV)
    assert parsed.kind == "chain_sync"
    assert parsed.dataset_key("blocks").endswith("/blocks")


def test_monad_example_uses_geth_traces_not_trace_namespace():
    parsed = spec.parse((ROOT / "examples" / "chain_sync.monad-testnet.yaml").read_text(), environ=ENV)
    assert "traces" not in parsed.datasets and "geth_calls" in parsed.datasets
    assert parsed.rpc.max_blocks_per_logs_request <= 10


def test_rpc_url_is_expanded_from_environment():
    parsed = spec.parse(VALID, environ=ENV)
    assert parsed.rpc.urls == ["http://127.0.0.1:8545"]
    assert parsed.dataset_key("blocks") == "monad_local/blocks"


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        (("to_block: 100", "to_block: 0"), "mode.to_block", "greater than from_block"),
        (("to_block: 100", "to_block: -5"), "mode.to_block", "greater than or equal to 0"),
        (("chunk_size: 10", "chunk_size: 0"), "chunk_size", "greater than 0"),
        (("[blocks, transactions]", "[blocks, txs]"), "datasets[1]", "unknown dataset 'txs'"),
        (("[blocks, transactions]", "[blocks, blocks]"), "datasets", "must not repeat"),
        (("[blocks, transactions]", "[]"), "datasets", "at least 1"),
        (("chain_id: 10143", "chain_id: x"), "chain_id", "integer"),
        (("name: monad-local", "name: Monad Local"), "name", "pattern"),
        (("fixed_target", "fixed"), "mode", "does not match"),
        (('urls: ["${TRACE_RPC_URL}"]', 'urls: ["ftp://x"]'), "rpc.urls", "http(s) URL"),
        (("chunk_size: 10", "chunk_size: 10\ncolour: blue"), "colour", "unknown field"),
    ],
)
def test_bad_specs_name_the_field(change, field, expected):
    text = VALID.replace(*change)
    with pytest.raises(errors.SpecError) as info:
        spec.parse(text, environ=ENV)
    assert info.value.details["field"] == field
    assert expected in str(info.value)
    assert str(info.value).startswith(field)


def test_invalid_yaml_names_the_line():
    with pytest.raises(errors.SpecError, match="invalid YAML at line 3"):
        spec.parse("name: x\nchain_id: 1\n  bad: [\n", environ=ENV)


def test_missing_environment_variable_is_named():
    with pytest.raises(errors.SpecError, match="TRACE_RPC_URL is not set"):
        spec.parse(VALID, environ={})


def test_spec_hash_is_stable_and_sensitive():
    a = spec.parse(VALID, environ=ENV)
    assert a.spec_hash() == spec.parse(VALID, environ=ENV).spec_hash()
    assert a.spec_hash() != spec.parse(VALID.replace("chunk_size: 10", "chunk_size: 20"), environ=ENV).spec_hash()
