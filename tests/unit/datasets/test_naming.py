"""Naming rules: deterministic ids and keys, end-exclusive ranges, clear errors for bad input."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trace_core.datasets import errors, naming

IDENTITY = {"chain_id": 10143, "dataset_key": "monad_local/blocks", "range_start": 0, "range_end": 1000,
            "config_hash": "0123456789abcdef"}


def test_version_id_is_a_pure_function_of_the_identity():
    # GIVEN the same identity twice WHEN the version id is computed THEN it is the same 32-hex id
    first = naming.version_id(**IDENTITY)
    assert first == naming.version_id(**dict(IDENTITY))
    assert len(first) == 32 and all(c in "0123456789abcdef" for c in first)
    # AND it is pinned: changing the rule would re-version every dataset ever written
    assert first == naming.sha256_hex(naming.canonical_json({
        "chain_id": 10143, "dataset": "monad_local/blocks", "range_start": 0, "range_end": 1000,
        "config_hash": "0123456789abcdef"}))[:32]


@pytest.mark.parametrize("field,value", [
    ("chain_id", 1), ("dataset_key", "monad_local/logs"), ("range_start", 1), ("range_end", 999),
    ("config_hash", "0123456789abcdee"),
])
def test_every_identity_field_changes_the_version_id(field, value):
    assert naming.version_id(**{**IDENTITY, field: value}) != naming.version_id(**IDENTITY)


@given(st.integers(0, 10**9), st.integers(1, 10**6), st.integers(0, 10**9), st.integers(1, 10**6))
def test_distinct_ranges_get_distinct_versions(start_a, len_a, start_b, len_b):
    a = naming.version_id(**{**IDENTITY, "range_start": start_a, "range_end": start_a + len_a})
    b = naming.version_id(**{**IDENTITY, "range_start": start_b, "range_end": start_b + len_b})
    assert (a == b) == ((start_a, len_a) == (start_b, len_b))


@pytest.mark.parametrize("field,value,expected", [
    ("range_end", 0, "range_end"), ("range_end", -5, "range_end"), ("range_start", -1, "range_start"),
    ("chain_id", 0, "chain_id"), ("dataset_key", "Blocks", "dataset_key"), ("dataset_key", "a/b/c", "dataset_key"),
    ("config_hash", "XYZ", "config_hash"), ("config_hash", "abc", "config_hash"),
])
def test_bad_identity_is_refused_naming_the_field(field, value, expected):
    with pytest.raises(errors.InvalidDatasetInputError) as caught:
        naming.version_id(**{**IDENTITY, field: value})
    assert caught.value.details["field"] == expected
    assert expected in str(caught.value)


def test_empty_range_is_refused_because_ranges_are_end_exclusive():
    with pytest.raises(errors.InvalidDatasetInputError, match="end-exclusive"):
        naming.check_range(10, 10)


def test_dataset_uuid_is_derived_from_the_key():
    assert naming.dataset_uuid("monad_local/blocks") == naming.dataset_uuid("monad_local/blocks")
    assert naming.dataset_uuid("monad_local/blocks") != naming.dataset_uuid("monad_local/logs")
    assert naming.dataset_uuid("monad-dev/blocks").version == 5


def test_version_prefix_and_manifest_key_follow_the_documented_layout():
    ds = uuid.UUID("c7ab8ad6-9876-5e91-894b-deafc2265714")
    prefix = naming.version_prefix(chain_id=10143, dataset_uuid=ds, range_start=0, range_end=1000, version="ab" * 16)
    assert prefix == f"cryo/10143/{ds}/0_1000/{'ab' * 16}/"
    assert naming.manifest_key(prefix) == prefix + "manifest.json"


def test_staging_keys_are_per_attempt_and_parse_back():
    task = uuid.uuid4()
    key = naming.staging_key(task, 2, "blocks", "x.parquet")
    assert key == f"staging/{task}/attempt-2/blocks/x.parquet"
    assert naming.parse_staging_prefix(key) == (task, 2)
    assert naming.parse_staging_prefix("cryo/1/x/") is None
    assert naming.staging_prefix(task, 1) != naming.staging_prefix(task, 2)
    with pytest.raises(errors.InvalidDatasetInputError, match="attempt"):
        naming.staging_prefix(task, 0)


def test_cryo_file_names_hold_the_inclusive_last_block():
    # Cryo names files {start}_to_{end-1}; our ranges stay end-exclusive.
    name = naming.cryo_file_name("network_10143", "blocks", 0, 1000)
    assert name == "network_10143__blocks__00000000_to_00000999.parquet"
    assert naming.parse_cryo_file_name(name) == ("network_10143", "blocks", 0, 1000)
    big = naming.cryo_file_name("network_1", "logs", 123_456_789, 123_456_790)
    assert naming.parse_cryo_file_name(big) == ("network_1", "logs", 123_456_789, 123_456_790)
