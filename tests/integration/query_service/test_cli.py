"""`trace-lite query` and `trace-lite token mint` as a user runs them, against a served Query Service.

The stack here is the tests' Postgres and moto server plus the service process, recorded in the home's
state file the way `trace-lite up` records them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from trace_core.auth import keys, tokens
from trace_core.lite import procs, state
from trace_core.lite import query as query_lite

CLI = [sys.executable, "-m", "trace_core.cli"]


@pytest.fixture(scope="module")
def synced(publish, make_visible):
    """A finished sync of namespace `clisync`: blocks [0, 120) in two ranges."""
    versions = [publish("blocks", 0, 60, namespace="clisync"), publish("blocks", 60, 120, namespace="clisync")]
    make_visible(versions)
    return versions


@pytest.fixture(scope="module")
def lite_home(module_settings, synced):
    record = query_lite.start(module_settings)
    stack = state.StackState(components={
        "postgres": state.ComponentRecord(name="postgres", managed=False, url=module_settings.database_url or ""),
        "query": record,
    })
    state.write(module_settings.home, stack)
    try:
        yield module_settings
    finally:
        procs.stop(record.pid)


def run(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACE_HOME": str(settings.home), "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
           "TRACE_DATASETS_BUCKET": settings.datasets_bucket, "TRACE_RESULTS_BUCKET": settings.results_bucket}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_query_counts_the_synced_blocks(lite_home):
    result = run(lite_home, "query", "select count(*) as n from blocks", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 120}]


def test_query_prints_a_table_by_default(lite_home):
    result = run(lite_home, "query", "select block_number, block_hash from blocks order by 1 limit 2")
    assert result.returncode == 0, result.stderr
    assert "block_number" in result.stdout and "0x" + (1).to_bytes(32, "big").hex()[:20] in result.stdout
    assert "2 rows" in result.stdout


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_query_writes_files_of_any_size(lite_home, tmp_path, suffix):
    out = tmp_path / f"blocks.{suffix}"
    result = run(lite_home, "query", "select block_number, block_hash from blocks order by 1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out) if suffix == "parquet" else pacsv.read_csv(out)
    assert table.num_rows == 120
    assert table.column("block_number").to_pylist() == list(range(120))


def test_query_refusal_is_a_clear_error(lite_home):
    result = run(lite_home, "query", "select * from read_csv('/etc/passwd')")
    assert result.returncode == 1
    assert "forbidden" in result.stderr and "root:" not in result.stdout + result.stderr


def test_token_mint_prints_a_token_the_service_accepts(lite_home):
    result = run(lite_home, "token", "mint", "--ttl", "120", "--dataset", "blocks")
    assert result.returncode == 0, result.stderr
    claims = tokens.verify(keys.from_settings(lite_home), result.stdout.strip(), audience=tokens.USER_AUDIENCE,
                           issuer=lite_home.token_issuer)
    assert [g.relation for g in claims.grants] == ["blocks"] and claims.subject == "lite@localhost"


def test_query_without_a_running_service_says_to_run_up(qs_settings):
    result = run(qs_settings, "query", "select 1")
    assert result.returncode == 1
    assert "Query Service is not running" in result.stderr and "trace-lite up" in result.stderr
