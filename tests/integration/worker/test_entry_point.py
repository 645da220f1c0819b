"""`python -m trace_core.worker`, the production worker: its pool from the declaration, settings from the
environment only (never the Lite state file), JSON log lines; `trace-lite worker` is the Lite shell over it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool
from trace_core import platform
from trace_core.dispatcher import models, tasks
from trace_core.lite import state

from tests.fixtures import processes
from tests.integration.worker.conftest import REPO, wait_for

pytestmark = pytest.mark.usefixtures("dispatcher_loop")

PRODUCTION = [sys.executable, "-m", "trace_core.worker"]
LITE = [sys.executable, "-m", "trace_core.cli", "worker"]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Factory: a worker process started with exactly ``env`` over a clean environment (stopped after the test)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRACE_", "AWS_", "PG"))}
    with processes.started(tmp_path) as started:

        def run(command: list[str], **env: str) -> subprocess.Popen[bytes]:
            return started.start(command, env={**clean, **env}, cwd=REPO)

        yield run


def _lines(proc: subprocess.Popen[bytes]) -> list[str]:
    return proc.log.read_text().splitlines()  # type: ignore[attr-defined]


def test_the_production_worker_serves_its_pool_and_logs_json_lines(start, database_url: str, db_pool: ConnectionPool,
                                                                  get_task, tmp_path: Path):
    # GIVEN the production worker of the delivery pool, configured by its environment alone
    proc = start(PRODUCTION, TRACE_DATABASE_URL=database_url, TRACE_WORKER_POOL=platform.DELIVERY_POOL,
                 TRACE_HOME=str(tmp_path / "home"))
    wait_for(lambda: any("ready" in line for line in _lines(proc)) or proc.poll() is not None, timeout=30)
    assert proc.poll() is None, proc.log.read_text()  # type: ignore[attr-defined]
    # WHEN a task of its pool's queue is created
    with db_pool.connection() as conn:
        task = tasks.create(conn, models.CreateTask(operator="noop", payload={}, queue=platform.DELIVERY_QUEUE))
    # THEN it runs it, and stops cleanly on SIGTERM
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=30)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.log.read_text()  # type: ignore[attr-defined]
    # AND every line it logged is a JSON object; the first says which pool, queue and operators it serves
    records = [json.loads(line) for line in _lines(proc)]
    ready = next(r for r in records if "ready" in r["message"])
    assert ready["level"] == "INFO" and ready["name"] == "trace_core.worker.serve"
    assert f"pool=delivery queue={platform.DELIVERY_QUEUE} operators=noop " in ready["message"]
    assert any("stopped" in r["message"] for r in records)


def test_the_production_worker_never_reads_the_lite_state_file(start, database_url: str, tmp_path: Path):
    # GIVEN a Lite home whose state file names a running Postgres, and no TRACE_DATABASE_URL
    home = tmp_path / "home"
    state.write(home, state.StackState(components={
        "postgres": state.ComponentRecord(name="postgres", managed=False, url=database_url)}))
    env = {"TRACE_HOME": str(home), "TRACE_WORKER_POOL": platform.DELIVERY_POOL}
    # WHEN the production worker starts there
    production = start(PRODUCTION, **env)
    # THEN it refuses, in one JSON line naming the setting it lacks
    assert production.wait(timeout=30) == 1
    (record,) = [json.loads(line) for line in _lines(production)]
    assert record["level"] == "ERROR" and record["details"] == {"variable": "TRACE_DATABASE_URL"}
    # AND `trace-lite worker`, the Lite shell over the same worker, takes the stack's Postgres from that file
    lite = start([*LITE, "--queue", platform.DELIVERY_QUEUE], **env)
    wait_for(lambda: any("ready" in line for line in _lines(lite)) or lite.poll() is not None, timeout=30)
    assert lite.poll() is None, lite.log.read_text()  # type: ignore[attr-defined]


def test_a_bad_setting_stops_the_production_worker_with_the_variable_named(start, database_url: str,
                                                                           tmp_path: Path):
    proc = start(PRODUCTION, TRACE_DATABASE_URL=database_url, TRACE_WORKER_POOL="nope",
                 TRACE_HOME=str(tmp_path / "home"))
    assert proc.wait(timeout=30) == 1
    (record,) = [json.loads(line) for line in _lines(proc)]
    assert record["details"] == {"variable": "TRACE_WORKER_POOL"}
    assert "'nope': no such worker pool; expected one of chain, delivery" in record["message"]
