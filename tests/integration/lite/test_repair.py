"""A Lite stack that repairs itself: a dead component is reported by `status` and brought back by one `up`.

One real stack for the module (about 5 s to start), in a throwaway project directory so
that `status` from a subdirectory, with no TRACE_HOME, has a stack to find.
"""

from __future__ import annotations

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

import boto3
import psycopg
import pytest
from trace_core.lite import procs

CLI = [sys.executable, "-m", "trace_core.cli"]
COMPONENT_KEYS = {"url", "managed", "pid", "health", "detail"}


def run(home: Path | None, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACE_HOME"}
    env["COLUMNS"] = "200"
    if home is not None:
        env["TRACE_HOME"] = str(home)
    return subprocess.run([*CLI, *args], check=False, capture_output=True, text=True, env=env, cwd=cwd, timeout=180)


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    # Outside pytest's tmp tree (see tests/fixtures/components.py: pg_admin_url).
    base = Path(tempfile.mkdtemp(prefix="trace-repair-"))
    project = base / "project"
    (project / ".git").mkdir(parents=True)  # the project root marker
    home = project / ".trace-lite"
    try:
        up = run(home, "up")
        assert up.returncode == 0, up.stderr
        yield project
    finally:
        run(home, "down")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def home(project: Path) -> Path:
    home = project / ".trace-lite"
    again = run(home, "up")  # whatever an earlier test left broken is repaired first
    assert again.returncode == 0, again.stderr
    return home


def _components(home: Path) -> dict:
    return json.loads((home / "state.json").read_text())["components"]


def _status_json(home: Path) -> tuple[int, dict]:
    result = run(home, "status", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_status_json_has_the_documented_shape_and_is_found_from_a_subdirectory(home: Path, project: Path):
    # GIVEN a healthy stack, and a shell deep inside its project with no TRACE_HOME
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True, exist_ok=True)

    # WHEN status runs there THEN it finds the stack
    human = run(None, "status", cwd=deep)
    assert human.returncode == 0, human.stdout + human.stderr
    assert "not up" not in human.stdout and "postgres" in human.stdout

    # AND --json prints the machine-readable state
    machine = run(None, "status", "--json", cwd=deep)
    assert machine.returncode == 0, machine.stderr
    document = json.loads(machine.stdout)
    assert document["healthy"] is True
    assert isinstance(document["jobs"], list)
    assert set(document["components"]) == {"postgres", "moto", "anvil", "query", "host"}
    for name, component in document["components"].items():
        assert set(component) == COMPONENT_KEYS, name
        assert component["health"] == "healthy" and component["managed"] is True
        assert component["pid"] == _components(home)[name]["pid"]


def test_dead_postgres_is_reported_then_restarted_on_its_data(home: Path):
    # GIVEN a row written to the stack's Postgres
    before = _components(home)
    with psycopg.connect(before["postgres"]["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.repair_probe (note text)")
        conn.execute("INSERT INTO public.repair_probe VALUES ('written before the crash')")

    # WHEN the embedded Postgres is killed while the stack runs
    _kill(before["postgres"]["pid"])

    # THEN status says postgres is down and what depends on it is degraded, exit 1, no traceback
    status = run(home, "status")
    assert status.returncode == 1
    assert "Traceback" not in status.stderr
    assert "postgres is down" in status.stdout and "trace-lite up" in status.stdout
    code, document = _status_json(home)
    assert code == 1 and document["healthy"] is False
    health = {name: (c["health"], c["detail"]) for name, c in document["components"].items()}
    assert health["postgres"][0] == "down"
    assert health["query"] == ("degraded", "postgres down")
    assert health["host"] == ("degraded", "postgres down")
    assert health["moto"] == health["anvil"] == ("healthy", "")

    # AND commands that need Postgres say so in one error, naming the fix
    for command in (["task", "list"], ["query", "select 1"], ["datasets"]):
        result = run(home, *command)
        assert result.returncode == 1, command
        assert "Traceback" not in result.stderr, command
        assert "postgres is down" in result.stderr and "trace-lite up" in result.stderr, command

    # WHEN up runs once
    up = run(home, "up")
    assert up.returncode == 0, up.stderr

    # THEN Postgres is back at the same URL with its data; the live components kept their processes
    after = _components(home)
    assert after["postgres"]["url"] == before["postgres"]["url"] and after["postgres"]["managed"] is True
    with psycopg.connect(after["postgres"]["url"]) as conn:
        assert conn.execute("SELECT note FROM public.repair_probe").fetchall() == [("written before the crash",)]
    assert after["moto"]["pid"] == before["moto"]["pid"]
    assert after["anvil"]["pid"] == before["anvil"]["pid"]
    for name in ("query", "host"):  # they held connections to the dead server: restarted
        assert after[name]["pid"] != before[name]["pid"] and procs.alive(after[name]["pid"]), name
        assert not procs.alive(before[name]["pid"]), name
    code, document = _status_json(home)
    assert code == 0 and document["healthy"] is True

    # AND the repaired stack runs tasks again
    created = run(home, "task", "create", "--operator", "noop", "--json")
    assert created.returncode == 0, created.stderr
    task_id = json.loads(created.stdout)["task_id"]
    deadline = time.monotonic() + 30
    while (got := json.loads(run(home, "task", "get", task_id, "--json").stdout))["status"] != "completed":
        assert time.monotonic() < deadline, got
        time.sleep(0.5)


def test_dead_moto_is_reported_then_restarted_as_managed_and_provisioned_by_one_up(home: Path):
    before = _components(home)

    # WHEN the moto server is killed while the stack runs
    _kill(before["moto"]["pid"])

    # THEN status reports it, and the host and the Query Service as degraded
    code, document = _status_json(home)
    assert code == 1
    health = {name: (c["health"], c["detail"]) for name, c in document["components"].items()}
    assert health["moto"][0] == "down"
    assert health["query"] == ("degraded", "moto down") and health["host"] == ("degraded", "moto down")

    # WHEN up runs once THEN moto is managed again at its URL, with its buckets and queues
    up = run(home, "up")
    assert up.returncode == 0, up.stderr
    after = _components(home)
    assert after["moto"]["managed"] is True and after["moto"]["url"] == before["moto"]["url"]
    assert procs.alive(after["moto"]["pid"]) and after["moto"]["pid"] != before["moto"]["pid"]
    s3 = boto3.client("s3", endpoint_url=after["moto"]["url"], region_name="us-east-1")
    assert {"datasets", "results", "scratch"} <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
    sqs = boto3.client("sqs", endpoint_url=after["moto"]["url"], region_name="us-east-1")
    assert sqs.get_queue_url(QueueName="trace-tasks")["QueueUrl"]
    assert after["postgres"]["pid"] == before["postgres"]["pid"]
    assert after["anvil"]["pid"] == before["anvil"]["pid"]
    code, document = _status_json(home)
    assert code == 0 and document["healthy"] is True
