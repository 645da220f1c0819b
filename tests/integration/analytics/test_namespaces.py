"""Which synced versions an analytic is granted: one dataset, under its plain name, from one namespace."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core.analytics import errors, service
from trace_core.datasets import naming

HASH = "ab" * 32


@pytest.fixture
def conn(make_database: Callable[..., str]) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A database of this test's own: what is visible is exactly what the test made visible."""
    with psycopg.connect(make_database(), autocommit=True, row_factory=dict_row) as connection:
        yield connection


def _visible(conn: psycopg.Connection[Any], key: str, ranges: list[tuple[int, int]]) -> None:
    """Committed versions of ``key`` recorded as a finished chain sync's ranges (below its cursor)."""
    namespace, dataset = naming.split_dataset_key(key)
    dataset_uuid = naming.dataset_uuid(key)
    with conn.transaction():
        conn.execute(
            "INSERT INTO state.datasets (dataset_uuid, key, chain_id, cryo_dataset) VALUES (%s, %s, 10143, %s)",
            (dataset_uuid, key, dataset))
        job = conn.execute("INSERT INTO state.jobs (name, kind, spec, spec_hash) VALUES (%s, 'chain_sync', '{}', 'x') "
                           "RETURNING job_id", (f"{namespace}-{uuid.uuid4().hex[:6]}",)).fetchone()["job_id"]
        cursor = max(end for _, end in ranges)
        conn.execute("INSERT INTO state.sync_streams (job_id, dataset, dataset_key, chain_id, next_block, cursor) "
                     "VALUES (%s, %s, %s, 10143, %s, %s)", (job, dataset, key, cursor, cursor))
        for start, end in ranges:
            version = naming.version_id(chain_id=10143, dataset_key=key, range_start=start, range_end=end,
                                        config_hash="00c0ffee")
            prefix = naming.version_prefix(chain_id=10143, dataset_uuid=dataset_uuid, range_start=start,
                                           range_end=end, version=version)
            conn.execute(
                "INSERT INTO state.dataset_versions (dataset_version, dataset_uuid, range_start, range_end, "
                "config_hash, storage_prefix, manifest_key, status, committed_at, manifest_sha256, row_count, bytes, "
                "schema_hash) VALUES (%s, %s, %s, %s, '00c0ffee', %s, %s, 'committed', now(), %s, 1, 1, %s)",
                (version, dataset_uuid, start, end, prefix, naming.manifest_key(prefix), HASH, HASH))
            conn.execute(
                "INSERT INTO state.sync_ranges (job_id, chain_id, dataset_key, dataset, range_start, range_end, "
                "status, dataset_version, committed_at) VALUES (%s, 10143, %s, %s, %s, %s, 'committed', %s, now())",
                (job, key, dataset, start, end, version))


def test_an_analytic_is_granted_its_one_dataset_under_its_plain_name(conn):
    # GIVEN two datasets of one namespace synced
    _visible(conn, "alpha/erc20_transfers", [(0, 100), (100, 250)])
    _visible(conn, "alpha/logs", [(0, 250)])
    # WHEN the grants for erc20_transfers are built THEN only it is granted, named as the template reads it
    (grant,) = service.grants_for(conn, "erc20_transfers")
    assert (grant.relation, grant.dataset_key) == ("erc20_transfers", "alpha/erc20_transfers")
    assert service.GrantCoverage([grant]).synced("erc20_transfers") == [(0, 100), (100, 250)]
    assert service.grants_for(conn, "staking_events") == []


def test_a_dataset_synced_in_two_namespaces_needs_a_choice(conn):
    _visible(conn, "alpha/erc20_transfers", [(0, 100)])
    _visible(conn, "beta/erc20_transfers", [(0, 40)])
    with pytest.raises(errors.ParameterError) as info:
        service.grants_for(conn, "erc20_transfers")
    assert "alpha, beta" in info.value.message and "--namespace" in info.value.message
    (grant,) = service.grants_for(conn, "erc20_transfers", namespace="beta")
    assert (grant.relation, grant.dataset_key) == ("erc20_transfers", "beta/erc20_transfers")
    assert service.GrantCoverage([grant]).synced("erc20_transfers") == [(0, 40)]
