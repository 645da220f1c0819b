"""Benchmark: cryo_ingest extraction throughput and peak memory against plain ``cryo.freeze``.

    .venv/bin/python -m bench.ingest_rss [--sizes 1000 20000] [--chunk 1000] [--json out.json]

Starts anvil and moto_server on 127.0.0.1, seeds ``max(sizes)`` blocks (value
transfers and token logs every few blocks), then for each size runs, each in
a fresh child process so peak RSS is that run's own:

- ``plain``: one ``cryo.freeze`` of the whole range into a local directory;
- ``ingest``: ``trace_core.ingest.extract.extract`` of the same range (sub-ranges
  of ``--chunk`` blocks, each staged to S3 on the moto server and deleted).

It prints blocks/s and peak RSS per run, and checks the claim the design makes:
the ingest worker's peak RSS does not grow with the range (largest vs smallest
within 1.5x). Exit code 1 if that check fails. Everything it starts it stops.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

DATASETS = ["blocks", "transactions", "logs"]
TOKEN = "0x00000000000000000000000000000000000f0001"
TRANSFER_TOPIC = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TOKEN_RUNTIME = "0x602035600052600035337f" + TRANSFER_TOPIC + "60206000a300"


def _call(client: httpx.Client, url: str, method: str, params: list[Any]) -> Any:
    body = client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


def seed(url: str, blocks: int, *, every: int = 20) -> int:
    """``blocks`` blocks: every ``every``-th has 3 transfers and a token log, the rest are empty."""
    with httpx.Client(timeout=60) as client:
        accounts = _call(client, url, "eth_accounts", [])
        _call(client, url, "anvil_setCode", [TOKEN, TOKEN_RUNTIME])
        _call(client, url, "evm_setAutomine", [False])
        mined = 0
        while mined < blocks:
            for i in range(3):
                _call(client, url, "eth_sendTransaction", [{"from": accounts[i], "to": accounts[i + 5],
                                                            "value": hex(10**15), "gas": hex(21_000)}])
            data = "0x" + accounts[7][2:].rjust(64, "0") + hex(1000 + mined)[2:].rjust(64, "0")
            _call(client, url, "eth_sendTransaction", [{"from": accounts[8], "to": TOKEN, "data": data,
                                                        "gas": hex(100_000)}])
            _call(client, url, "anvil_mine", [hex(min(every, blocks - mined))])
            mined += min(every, blocks - mined)
        return int(_call(client, url, "eth_blockNumber", []), 16)


def child(args: argparse.Namespace) -> None:
    """One measured run in this process; prints a JSON line."""
    start, end = args.start, args.start + args.size
    if args.mode == "plain":
        import cryo

        began = time.monotonic()  # after the imports: both modes are timed on the work alone
        with tempfile.TemporaryDirectory() as out:
            cryo.freeze(DATASETS, blocks=[f"{start}:{end}"], rpc=args.rpc, output_dir=out, no_report=True,
                        verbose=False, chunk_size=args.chunk, hex=True)
    else:
        import boto3
        from trace_core.datasets import objectstore
        from trace_core.ingest import extract, request

        began = time.monotonic()
        s3 = boto3.client("s3", endpoint_url=args.s3, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        store = objectstore.S3ObjectStore(s3, args.bucket)
        req = request.parse({"chain_id": 10143, "namespace": "bench", "datasets": DATASETS, "range_start": start,
                             "range_end": end, "rpc": {"urls": [args.rpc]}, "extract": {"chunk_blocks": args.chunk}})
        extract.extract(req, store=store, task_id=uuid.uuid4(), attempt=1)
    elapsed = time.monotonic() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"mode": args.mode, "blocks": args.size, "seconds": round(elapsed, 3),
                      "blocks_per_s": round(args.size / elapsed, 1), "peak_rss_mib": round(peak_kib / 1024, 1)}))


def _measure(mode: str, size: int, *, rpc: str, s3: str, bucket: str, chunk: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.ingest_rss", "--child", mode, "--size", str(size), "--start", "1",
           "--rpc", rpc, "--s3", s3, "--bucket", bucket, "--chunk", str(chunk)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600,
                          cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=["plain", "ingest"])
    parser.add_argument("--size", type=int)
    parser.add_argument("--start", type=int, default=1)
    parser.add_argument("--rpc")
    parser.add_argument("--s3")
    parser.add_argument("--bucket")
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return 0

    import boto3
    from trace_core.lite import anvil, moto, procs

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    anvil_proc = moto_proc = None
    try:
        anvil_port, moto_port = procs.free_port(), procs.free_port()
        # Old states are not needed for blocks, transactions and logs; pruning keeps seeding fast.
        anvil_proc = anvil.start(anvil_port, work / "anvil.log", extra=["--prune-history"])
        moto_proc = moto.start(moto_port, work / "moto.log")
        rpc, s3_url = anvil.url(anvil_port), moto.url(moto_port)
        bucket = "bench-datasets"
        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket=bucket)
        began = time.monotonic()
        head = seed(rpc, max(args.sizes) + 1)
        print(f"seeded {head} blocks in {time.monotonic() - began:.1f}s", file=sys.stderr)
        results = []
        for size in args.sizes:
            for mode in ("plain", "ingest"):
                result = _measure(mode, size, rpc=rpc, s3=s3_url, bucket=bucket, chunk=args.chunk)
                print(json.dumps(result))
                results.append(result)
    finally:
        for proc in (anvil_proc, moto_proc):
            if proc is not None:
                procs.stop(proc.pid)
                proc.wait(timeout=10)
    ingest = sorted((r for r in results if r["mode"] == "ingest"), key=lambda r: r["blocks"])
    bounded = ingest[-1]["peak_rss_mib"] <= 1.5 * ingest[0]["peak_rss_mib"]
    summary = {"results": results, "rss_bounded": bounded}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(f"ingest peak RSS {ingest[0]['peak_rss_mib']} MiB at {ingest[0]['blocks']} blocks, "
          f"{ingest[-1]['peak_rss_mib']} MiB at {ingest[-1]['blocks']} blocks: "
          f"{'bounded' if bounded else 'GROWS WITH THE RANGE'}", file=sys.stderr)
    return 0 if bounded else 1


if __name__ == "__main__":
    from trace_core.worker import process_exit  # child modes run Cryo in this process (decision 1302)

    sys.exit(process_exit.entry_point(main)())
