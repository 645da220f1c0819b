"""Lite keeps what it holds: after `down`/`up`, after a SIGKILL of every process, and it says when a store lost data.

One real stack for the module (Postgres, moto with S3 on disk, anvil with its state
file, the Query Service, the host running Cryo), a small seeded chain synced into
three datasets. Each test restarts or damages the stack and checks what users rely
on: the same query answers through the Query Service, every committed version's
objects in S3 (asked of the moto endpoint with boto3, never through the Query
Service's local cache), the same chain. The last test resets the stack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core import chain
from trace_core import settings as settings_mod
from trace_core.auth import issuing, keys
from trace_core.chainsync import chain_reader, jobs
from trace_core.chainsync import spec as spec_mod
from trace_core.lite import durability, procs, stack, state
from trace_core.query.service import client as query_client
from trace_core.settings import Settings

CLI = [sys.executable, "-m", "trace_core.cli"]
BLOCKS = 60
SPEC = f"""
apiVersion: trace/v1
kind: chain_sync
name: durable
chain_id: 10143
namespace: monad_local
rpc:
  urls: ["${{TRACE_RPC_URL}}"]
datasets: [blocks, transactions, logs]
mode: {{type: fixed_target, from_block: 0, to_block: {BLOCKS}}}
chunk_size: 20
max_inflight: 3
"""
# One question per dataset; the block hashes tie the answers to this very chain.
QUESTIONS = (
    "select block_number, block_hash from blocks order by block_number",
    "select count(*) as n, sum(gas_used) as gas from transactions",
    "select count(*) as n, min(block_number) as lo, max(block_number) as hi from logs",
)


@dataclasses.dataclass
class Lite:
    home: Path
    answers: list[list[dict[str, Any]]] = dataclasses.field(default_factory=list)
    head_hash: str = ""

    def settings(self) -> Settings:
        base = settings_mod.load({"TRACE_HOME": str(self.home)})
        return stack.settings_for(base, state.read(self.home))

    def up(self) -> None:
        stack.up(settings_mod.load({"TRACE_HOME": str(self.home)}))

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.settings().database_url or "", row_factory=dict_row)

    def apply(self) -> jobs.ApplyResult:
        settings = self.settings()
        spec = spec_mod.parse(SPEC, environ={"TRACE_RPC_URL": settings.rpc_url or ""})
        with self.connect() as conn:
            return jobs.apply(conn, spec, chain_reader.RpcChainReader(spec.rpc.urls),
                              store=durability.datasets_store(settings))

    def wait_completed(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self.connect() as conn:
            while True:
                job, streams = jobs.progress(conn, "durable")
                if job["status"] == "completed":
                    return
                assert time.monotonic() < deadline, f"sync did not complete: {job['status']} {streams}"
                time.sleep(0.3)
                conn.commit()

    def ask(self) -> list[list[dict[str, Any]]]:
        settings = self.settings()
        url = state.read(self.home).components["query"].url
        with self.connect() as conn:
            token = issuing.lite_user_token(conn, keys.from_settings(settings), issuer=settings.token_issuer,
                                            datasets=None, ttl=dt.timedelta(minutes=5))
        with query_client.QueryClient(url, token) as http:
            return [http.query(sql).table.to_pylist() for sql in QUESTIONS]

    def chain_head(self) -> str:
        with chain.RpcClient(self.settings().rpc_url or "") as rpc:
            return str(rpc.call("eth_getBlockByNumber", [hex(BLOCKS), False])["hash"])

    def visible(self) -> list[dict[str, Any]]:
        with self.connect() as conn:
            return jobs.visible_versions(conn)

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.settings().aws_endpoint_url, region_name="us-east-1",
                            aws_access_key_id="trace-lite", aws_secret_access_key="trace-lite")

    def missing_objects(self) -> list[str]:
        """Every object a visible version's manifest names, asked of S3 itself (not the query cache)."""
        s3, bucket, missing = self.s3(), self.settings().datasets_bucket, []
        for version in self.visible():
            try:
                manifest = json.loads(s3.get_object(Bucket=bucket, Key=version["manifest_key"])["Body"].read())
            except s3.exceptions.NoSuchKey:
                missing.append(version["manifest_key"])
                continue
            for item in manifest["files"]:
                key = version["storage_prefix"] + item["path"]
                if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] != item["size"]:
                    missing.append(key)
        return missing


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACE_", "AWS_ENDPOINT"))}
    env.update(TRACE_HOME=str(home), COLUMNS="200")
    return subprocess.run([*CLI, *args], check=False, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def lite() -> Iterator[Lite]:
    # Outside pytest's tmp tree (see tests/fixtures/components.py: pg_admin_url).
    base = Path(tempfile.mkdtemp(prefix="trace-durable-"))
    synced = Lite(home=base / "lite")
    try:
        synced.up()
        chain.seed(synced.settings().rpc_url or "", seed=5, blocks=BLOCKS)
        assert synced.apply().outcome == "created"
        synced.wait_completed()
        synced.answers = synced.ask()
        synced.head_hash = synced.chain_head()
        assert len(synced.answers[0]) == BLOCKS and synced.answers[1][0]["n"] > 0
        assert len(synced.visible()) == 9 and synced.missing_objects() == []
        yield synced
    finally:
        stack.down(settings_mod.load({"TRACE_HOME": str(synced.home)}))
        shutil.rmtree(base, ignore_errors=True)


def _pids(home: Path) -> dict[str, int]:
    return {name: record.pid for name, record in state.read(home).components.items() if record.pid}


def _not_reaped(pid: int) -> bool:
    # this process started the ones `stack.up` spawns: reap them (init reaps Postgres, pg_ctl's orphan)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return Path(f"/proc/{pid}").exists()


def assert_all_kept(lite: Lite) -> None:
    assert lite.chain_head() == lite.head_hash  # the same chain, not a re-seeded one
    assert lite.missing_objects() == []
    assert len(lite.visible()) == 9
    assert lite.ask() == lite.answers
    again = lite.apply()  # the job is done: nothing to sync, nothing lost
    assert (again.outcome, again.scheduled, again.recovered) == ("unchanged", 0, 0)


def test_down_then_up_brings_back_objects_chain_and_registry(lite: Lite):
    rpc_before = lite.settings().rpc_url
    pids = _pids(lite.home)
    # WHEN the stack goes down THEN every process stops
    stack.down(lite.settings())
    assert not any(procs.alive(pid) for pid in pids.values())
    # WHEN it comes up again THEN every query answers the same, from the same chain, with every object in S3
    lite.up()
    assert lite.settings().rpc_url == rpc_before  # the URL chain sync stored for the job still works
    assert_all_kept(lite)


def test_sigkill_of_every_process_then_up_keeps_everything(lite: Lite):
    time.sleep(2.5)  # anvil dumps its state every 2 s; blocks mined since the last dump are what a kill may lose
    pids = _pids(lite.home)
    assert set(pids) == {"postgres", "moto", "anvil", "query", "host"}
    # WHEN every Lite process (and its children: Postgres backends, query workers, the host's workers) is killed
    for pid in pids.values():
        os.killpg(pid, signal.SIGKILL)
    # Until reaped: Postgres refuses its data directory while the pid in postmaster.pid exists, zombie or not.
    deadline = time.monotonic() + 20
    while any(_not_reaped(pid) for pid in pids.values()):
        assert time.monotonic() < deadline, "killed processes were not reaped"
        time.sleep(0.1)
    # THEN one `up` brings back the same answers, chain and objects
    lite.up()
    assert not set(_pids(lite.home).values()) & set(pids.values())
    assert_all_kept(lite)


def test_a_lost_version_is_named_by_status_and_re_extracted_by_chain_sync(lite: Lite):
    # GIVEN the objects of one committed version disappear from S3 behind Lite's back
    lost = next(v for v in lite.visible() if v["dataset"] == "blocks" and v["range_start"] == 20)
    s3, bucket = lite.s3(), lite.settings().datasets_bucket
    keys_gone = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=lost["storage_prefix"])["Contents"]]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys_gone]})

    # WHEN the user asks for the status THEN it names the unreadable version
    status = cli(lite.home, "status")
    assert lost["dataset_version"] in status.stdout, status.stdout + status.stderr
    assert "cannot be read" in status.stdout
    as_json = json.loads(cli(lite.home, "status", "--json").stdout)
    assert [u["dataset_version"] for u in as_json["unreadable_versions"]] == [lost["dataset_version"]]

    # WHEN chain sync runs again THEN it re-extracts the range instead of reporting the job completed
    result = lite.apply()
    assert (result.outcome, result.recovered) == ("unchanged", 1)
    lite.wait_completed()
    # THEN queries answer as before, from a new version of that range whose objects are all in S3
    assert lite.ask() == lite.answers
    versions = {(v["dataset"], v["range_start"]): v["dataset_version"] for v in lite.visible()}
    assert len(versions) == 9 and versions[("blocks", 20)] != lost["dataset_version"]
    assert lite.missing_objects() == []
    assert "cannot be read" not in cli(lite.home, "status").stdout


def test_objects_lost_while_down_are_re_extracted_by_up(lite: Lite):
    # GIVEN the stack is down and one version's files vanish from the S3 directory
    victim = next(v for v in lite.visible() if v["dataset"] == "logs" and v["range_start"] == 40)
    stack.down(lite.settings())
    folder = lite.home / "s3" / "datasets" / victim["storage_prefix"].rstrip("/")
    assert folder.is_dir()
    shutil.rmtree(folder)
    # WHEN it comes up THEN chain sync re-extracts that range on its own, and queries answer as before
    lite.up()
    lite.wait_completed()
    assert lite.ask() == lite.answers
    versions = {(v["dataset"], v["range_start"]): v["dataset_version"] for v in lite.visible()}
    assert len(versions) == 9 and versions[("logs", 40)] != victim["dataset_version"]
    assert lite.missing_objects() == []


def test_reset_refuses_without_yes_then_wipes_everything(lite: Lite):
    refused = cli(lite.home, "reset")
    assert refused.returncode == 1
    assert "trace-lite reset --yes" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert (lite.home / "s3").is_dir() and (lite.home / "state.json").exists()

    pids = _pids(lite.home)
    wiped = cli(lite.home, "reset", "--yes")
    assert wiped.returncode == 0, wiped.stderr
    assert not any(procs.alive(pid) for pid in pids.values())
    for name in ("state.json", "postgres", "s3", "anvil", "logs", "cache"):
        assert not (lite.home / name).exists(), name
    # AND the next `up` starts empty: no job, an empty chain
    lite.up()
    with lite.connect() as conn:
        assert jobs.list_jobs(conn) == []
    with chain.RpcClient(lite.settings().rpc_url or "") as rpc:
        assert rpc.call("eth_blockNumber") == "0x0"
