"""The registry: idempotent registration, loud conflicts, and only committed versions are visible."""

from __future__ import annotations

import pytest
from trace_core.datasets import errors, naming, registry


def test_registering_a_dataset_twice_returns_the_same_row(conn):
    first = registry.register_dataset(conn, key="reg_a/blocks", chain_id=10143, cryo_dataset="blocks")
    again = registry.register_dataset(conn, key="reg_a/blocks", chain_id=10143, cryo_dataset="blocks",
                                      schema_hash="e" * 64)
    assert again.dataset_uuid == first.dataset_uuid == naming.dataset_uuid("reg_a/blocks")
    # the first schema seen is filled in once, and not overwritten later
    assert again.schema_hash == "e" * 64
    later = registry.register_dataset(conn, key="reg_a/blocks", chain_id=10143, cryo_dataset="blocks",
                                      schema_hash="f" * 64)
    assert later.schema_hash == "e" * 64


def test_a_conflicting_dataset_registration_fails_naming_the_field(conn):
    registry.register_dataset(conn, key="reg_b/logs", chain_id=10143, cryo_dataset="logs")
    with pytest.raises(errors.DatasetConflictError) as caught:
        registry.register_dataset(conn, key="reg_b/logs", chain_id=1, cryo_dataset="logs")
    assert caught.value.details["field"] == "chain_id"
    assert "10143" in str(caught.value)
    with pytest.raises(errors.InvalidDatasetInputError) as bad:
        registry.register_dataset(conn, key="reg_b/logs", chain_id=10143, cryo_dataset="blocks")
    assert bad.value.details["field"] == "cryo_dataset"


def test_the_same_inputs_map_to_the_same_version(conn):
    dataset = registry.register_dataset(conn, key="reg_c/blocks", chain_id=10143, cryo_dataset="blocks")
    one = registry.register_version(conn, dataset=dataset, range_start=0, range_end=100, config_hash="ab" * 8)
    two = registry.register_version(conn, dataset=dataset, range_start=0, range_end=100, config_hash="ab" * 8)
    other = registry.register_version(conn, dataset=dataset, range_start=100, range_end=200, config_hash="ab" * 8)
    assert one.dataset_version == two.dataset_version != other.dataset_version
    assert one.storage_prefix == (
        f"cryo/10143/{dataset.dataset_uuid}/0_100/{one.dataset_version}/")
    assert one.manifest_key == one.storage_prefix + "manifest.json"
    assert one.status == "staged"


def test_a_staged_version_is_not_visible(conn):
    dataset = registry.register_dataset(conn, key="reg_d/blocks", chain_id=10143, cryo_dataset="blocks")
    staged = registry.register_version(conn, dataset=dataset, range_start=0, range_end=10, config_hash="cd" * 8)
    with pytest.raises(errors.VersionNotFoundError):
        registry.get_committed(conn, staged.dataset_version)
    assert registry.list_committed(conn, "reg_d/blocks") == []
    assert registry.get_version(conn, staged.dataset_version).status == "staged"


def test_a_tampered_registration_is_refused(conn):
    # GIVEN a row whose storage prefix was changed behind the registry's back
    dataset = registry.register_dataset(conn, key="reg_e/blocks", chain_id=10143, cryo_dataset="blocks")
    version = registry.register_version(conn, dataset=dataset, range_start=0, range_end=10, config_hash="ef" * 8)
    conn.execute("UPDATE state.dataset_versions SET storage_prefix = 'elsewhere/' WHERE dataset_version = %s",
                 (version.dataset_version,))
    # WHEN the same version is registered again THEN the disagreement is loud and names the field
    with pytest.raises(errors.DatasetConflictError) as caught:
        registry.register_version(conn, dataset=dataset, range_start=0, range_end=10, config_hash="ef" * 8)
    assert caught.value.details["field"] == "storage_prefix"


def test_the_schema_refuses_incomplete_committed_rows(conn):
    import psycopg

    dataset = registry.register_dataset(conn, key="reg_f/blocks", chain_id=10143, cryo_dataset="blocks")
    version = registry.register_version(conn, dataset=dataset, range_start=0, range_end=10, config_hash="aa" * 8)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE state.dataset_versions SET status = 'committed', committed_at = now() "
                     "WHERE dataset_version = %s", (version.dataset_version,))
