"""The Lite stores keep their data on disk: moto's S3 (written through) and anvil's chain (dumped state).

Real processes: the moto server with ``--data-dir`` and anvil started by ``start_durable``,
each killed with SIGKILL and started again on the same directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from trace_core import chain
from trace_core.lite import anvil, moto, procs


class Server:
    """A moto server on ``data_dir`` that a test can kill and start again."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Any:
        port = procs.free_port()
        self.proc = moto.start(port, self.log, data_dir=self.data_dir)
        return boto3.client("s3", endpoint_url=moto.url(port), region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "s3", tmp_path / "moto.log")
    yield running
    if running.proc is not None and running.proc.poll() is None:
        procs.stop(running.proc.pid)


def _listing(s3: Any, bucket: str) -> dict[str, tuple[str, int, Any]]:
    return {o["Key"]: (o["ETag"], o["Size"], o["LastModified"])
            for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_every_acknowledged_s3_change_survives_a_sigkill(server: Server):
    # GIVEN the writes Trace makes: put with checksum, put with type and metadata, copy, multipart, deletes
    s3 = server.start()
    s3.create_bucket(Bucket="datasets")
    data = os.urandom(200_000)
    s3.put_object(Bucket="datasets", Key="staging/t/attempt-1/blocks/f.parquet", Body=data,
                  ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode())
    s3.copy_object(Bucket="datasets", Key="cryo/1/u/0_10/v/f.parquet",
                   CopySource={"Bucket": "datasets", "Key": "staging/t/attempt-1/blocks/f.parquet"})
    s3.put_object(Bucket="datasets", Key="cryo/1/u/0_10/v/manifest.json", Body=b"{}",
                  ContentType="application/json", Metadata={"origin": "test"})
    upload = s3.create_multipart_upload(Bucket="datasets", Key="big.parquet")
    first, second = os.urandom(5 * 1024 * 1024), b"tail"
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket="datasets", Key="big.parquet", PartNumber=n,
                                                         UploadId=upload["UploadId"], Body=body)["ETag"]}
             for n, body in ((1, first), (2, second))]
    s3.complete_multipart_upload(Bucket="datasets", Key="big.parquet", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    s3.delete_objects(Bucket="datasets", Delete={"Objects": [{"Key": "staging/t/attempt-1/blocks/f.parquet"}]})
    s3.create_bucket(Bucket="scratch")
    s3.create_bucket(Bucket="gone")
    s3.delete_bucket(Bucket="gone")
    before = _listing(s3, "datasets")
    head = s3.head_object(Bucket="datasets", Key="cryo/1/u/0_10/v/manifest.json")

    # WHEN the server is killed and started again on the same directory
    server.kill()
    s3 = server.start()

    # THEN every object is back with its bytes, ETag (multipart too), size, time, type and metadata
    assert _listing(s3, "datasets") == before
    assert sorted(before) == ["big.parquet", "cryo/1/u/0_10/v/f.parquet", "cryo/1/u/0_10/v/manifest.json"]
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["datasets", "scratch"]
    assert s3.get_object(Bucket="datasets", Key="cryo/1/u/0_10/v/f.parquet")["Body"].read() == data
    assert s3.get_object(Bucket="datasets", Key="big.parquet")["Body"].read() == first + second
    again = s3.head_object(Bucket="datasets", Key="cryo/1/u/0_10/v/manifest.json")
    assert (again["ContentType"], again["Metadata"], again["ETag"]) == ("application/json", {"origin": "test"},
                                                                         head["ETag"])
    # AND the emptied staging folders were pruned from disk
    assert not (server.data_dir / "datasets" / "staging").exists()


def test_a_change_that_cannot_be_stored_is_not_acknowledged(server: Server):
    s3 = server.start()
    s3.create_bucket(Bucket="datasets")
    tmp = server.data_dir / ".tmp"
    tmp.rmdir()
    tmp.write_text("in the way")  # the write-through has nowhere to write
    with pytest.raises(ClientError) as failed:
        s3.put_object(Bucket="datasets", Key="k", Body=b"v")
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def _rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
                      timeout=5).json()["result"]


def _hashes(url: str) -> list[str]:
    head = int(_rpc(url, "eth_blockNumber"), 16)
    return [_rpc(url, "eth_getBlockByNumber", [hex(n), False])["hash"] for n in range(head + 1)]


def test_anvil_keeps_its_chain_across_stop_sigkill_and_a_cut_short_dump(tmp_path: Path):
    chain_dir, log = tmp_path / "anvil", tmp_path / "anvil.log"

    def start() -> tuple[subprocess.Popen[bytes], str]:
        port = procs.free_port()
        return anvil.start_durable(port, log, state_dir=chain_dir), anvil.url(port)

    proc, url = start()
    try:
        chain.seed(url, seed=3, blocks=20)
        mined = _hashes(url)
        assert len(mined) == 21
        # WHEN stopped (SIGTERM: anvil dumps on exit) and started again THEN the same blocks, hashes included
        procs.stop(proc.pid)
        proc, url = start()
        assert _hashes(url) == mined
        # WHEN killed after a periodic dump THEN the same again
        _rpc(url, "evm_mine")
        mined = _hashes(url)
        procs.wait_until("anvil's periodic dump", lambda: _dumped_head(chain_dir) == len(mined) - 1, timeout=10)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc, url = start()
        assert _hashes(url) == mined, log.read_text()[-2000:]
        # WHEN the dump was cut short (killed mid-write) THEN the last state that loaded is used, the bad file kept
        procs.stop(proc.pid)
        state = chain_dir / anvil.STATE_FILE
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
        proc, url = start()
        assert _hashes(url) == mined
        assert len(list(chain_dir.glob("state.corrupt-*.json"))) == 1
        assert "was cut short" in log.read_text()
    finally:
        procs.stop(proc.pid)


def _dumped_head(chain_dir: Path) -> int:
    try:
        return int(json.loads((chain_dir / anvil.STATE_FILE).read_text())["best_block_number"])
    except (OSError, ValueError, KeyError):  # not written yet, or caught mid-write
        return -1
