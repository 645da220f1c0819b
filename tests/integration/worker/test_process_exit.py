"""Processes that ran Cryo end with the status they mean (decision 1302).

Without ``trace_core.worker.process_exit`` a process that exits just after a freeze dies with SIGABRT or
SIGSEGV about 1 time in 10 (Cryo's threads race the interpreter's finalisation), and one that exits while a
freeze is in flight waits for the freeze (``cryo.freeze`` runs it on a non-daemon executor thread).
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from trace_core.lite import procs

from tests.fixtures import components
from tests.integration.ingest import chain as chain_mod
from tests.integration.worker.conftest import REPO, wait_for

# One real freeze against a port nobody listens on (it fails at once, after Cryo has built its runtime),
# then the process ends at once, through the wrapper `trace-lite` runs under, in the way argv[2] names.
PROBE = textwrap.dedent("""
    import atexit, sys
    from trace_core.worker import process_exit

    @process_exit.entry_point
    def main():
        import cryo
        try:
            cryo.freeze(["blocks"], blocks=["0:1"], rpc=sys.argv[1], output_dir=sys.argv[3], no_report=True,
                        verbose=False, max_retries=0)
        except Exception:
            pass
        atexit.register(print, "atexit ran")
        print("froze")  # stdout is a pipe: block-buffered, so this line needs the flush on the way out
        if sys.argv[2] == "exit":
            sys.exit(3)
        if sys.argv[2] == "raise":
            raise RuntimeError("boom")

    main()
""")
MEANT = {"return": 0, "exit": 3, "raise": 1}
RUNS = 50


def test_fifty_processes_that_ran_cryo_exit_with_the_status_they_mean(tmp_path: Path):
    # GIVEN 50 processes that each run one real freeze and end right after it: returning (graceful, 0),
    # by sys.exit(3), or by an uncaught exception (1)
    dead = f"http://{procs.HOST}:{procs.free_port()}"
    ways = [list(MEANT)[i % len(MEANT)] for i in range(RUNS)]

    def run(i: int) -> subprocess.CompletedProcess[str]:
        out = tmp_path / str(i)
        return subprocess.run([sys.executable, "-c", PROBE, dead, ways[i], str(out)], capture_output=True,
                              text=True, timeout=60, cwd=REPO, check=False)

    # WHEN they run, two at a time
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run, range(RUNS)))
    # THEN every one exited with the status it meant (a crash shows as -6 / -11), said everything it printed,
    # ran its atexit callbacks, and an uncaught exception still printed its traceback
    statuses = [p.returncode for p in done]
    assert statuses == [MEANT[w] for w in ways], [(w, p.returncode, p.stderr[-300:]) for w, p in zip(ways, done)
                                                  if p.returncode != MEANT[w]]
    assert all(p.stdout.split("\n")[:2] == ["froze", "atexit ran"] for p in done)
    assert all("RuntimeError: boom" in p.stderr for w, p in zip(ways, done) if w == "raise")


# ------------------------------------------------------------------ a real `trace-lite worker`
@pytest.fixture
def node(make_anvil) -> Iterator[tuple[str, threading.Event]]:
    """anvil with 3 blocks behind a front that holds every eth_getLogs (only Cryo's logs extraction sends it)
    until the test ends; yields the front's URL and an event set once a call is being held."""
    upstream = make_anvil()
    chain_mod.call(upstream, "anvil_mine", ["0x3"])
    held, release = threading.Event(), threading.Event()

    def answer(item: dict[str, Any]) -> dict[str, Any]:
        if item.get("method") == "eth_getLogs":
            held.set()
            release.wait(60)
        return chain_mod.forward(upstream, item)

    with chain_mod.rpc_front(answer) as url:
        try:
            yield url, held
        finally:
            release.set()


@pytest.fixture
def datasets_bucket(moto_url: str) -> Iterator[str]:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    with components.temporary_buckets(s3, "exit") as buckets:
        yield buckets["datasets"]


def ingest(url: str, dataset: str) -> dict[str, Any]:
    return {"chain_id": 10143, "namespace": f"exit-{dataset}", "datasets": [dataset], "range_start": 0,
            "range_end": 2, "rpc": {"urls": [url]}}


@pytest.mark.usefixtures("dispatcher_loop")
def test_a_worker_that_ran_cryo_exits_0_on_sigterm_even_with_a_freeze_in_flight(
    spawn_worker, create, get_task, attempts, node, datasets_bucket, moto_url
):
    # GIVEN a worker that has run a cryo_ingest to completion
    url, held = node
    proc = spawn_worker("--on-term", "abandon", env={"AWS_ENDPOINT_URL": moto_url,
                                                     "TRACE_DATASETS_BUCKET": datasets_bucket})
    first = create("cryo_ingest", ingest(url, "blocks"))
    wait_for(lambda: get_task(first.task_id).status in ("completed", "failed"), timeout=60)
    assert get_task(first.task_id).status == "completed", proc.log.read_text()  # type: ignore[attr-defined]
    # AND is now inside a second freeze, which the node does not answer
    second = create("cryo_ingest", ingest(url, "logs"))
    wait_for(held.is_set, timeout=30)
    # WHEN it gets SIGTERM
    os.kill(proc.pid, signal.SIGTERM)
    # THEN it gives the lease back and exits 0 at once (neither waiting for the freeze nor crashing),
    # with its last log line written
    try:
        status = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not exit within 15 s of SIGTERM:\n" + proc.log.read_text())  # type: ignore[attr-defined]
    assert status == 0, proc.log.read_text()  # type: ignore[attr-defined]
    assert [a["outcome"] for a in attempts(second.task_id)] == ["abandoned"]
    assert " stopped: " in proc.log.read_text()  # type: ignore[attr-defined]
