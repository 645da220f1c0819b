"""Done-when of the dispatcher in Lite: `trace-lite up` runs the API, drainer, reaper and a worker;
`trace-lite task create --operator noop` followed by `trace-lite status` shows the task completed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from trace_core.lite import procs

CLI = [sys.executable, "-m", "trace_core.cli"]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], check=False, capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "lite"
    try:
        yield home
    finally:
        run(home, "down")  # always, whatever the test left running


def _tasks_row(status_output: str) -> dict[str, int]:
    """The counts of the Tasks table that `trace-lite status` prints."""
    lines = status_output.splitlines()
    header_at = next(i for i, line in enumerate(lines) if "queued" in line and "completed" in line)
    header = [cell.strip() for cell in lines[header_at].strip("┃│ ").split("┃" if "┃" in lines[header_at] else "│")]
    row = next(line for line in lines[header_at + 1:] if line.strip().startswith("│"))
    values = [cell.strip() for cell in row.strip("│ ").split("│")]
    return {name: int(value) for name, value in zip(header, values)}


def test_up_then_task_create_noop_then_status_shows_it_completed(home: Path):
    # GIVEN the Lite stack is up
    up = run(home, "up")
    assert up.returncode == 0, up.stderr
    components = json.loads((home / "state.json").read_text())["components"]
    host = components["host"]
    assert host["url"].startswith("http://127.0.0.1:") and procs.alive(host["pid"])
    assert httpx.get(host["url"] + "/__host/health").json()["ok"] is True

    # WHEN a noop task is created through the dispatcher core (+ outbox)
    created = run(home, "task", "create", "--operator", "noop", "--json")
    assert created.returncode == 0, created.stderr
    task = json.loads(created.stdout)
    assert task["status"] == "queued" and task["operator"] == "noop"

    # THEN `trace-lite status` shows it completed (the host drained, a worker claimed, ran and completed it)
    deadline = time.monotonic() + 30
    while True:
        status = run(home, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        counts = _tasks_row(status.stdout)
        if counts["completed"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counts == {"queued": 0, "running": 0, "completed": 1, "failed": 0, "dead": 0, "pending wake-ups": 0}
    assert "host" in status.stdout
    got = json.loads(run(home, "task", "get", task["task_id"], "--json").stdout)
    assert got["status"] == "completed" and got["outputs"] == {"noop": True, "attempt": 1}
    assert [a["outcome"] for a in got["attempts"]] == ["succeeded"]

    # AND the task is visible through the dispatcher API the host serves
    api = httpx.get(f"{host['url']}/v1/tasks/{task['task_id']}").json()
    assert api["status"] == "completed"

    # WHEN the stack goes down THEN the host is stopped with the rest
    assert run(home, "down").returncode == 0
    assert not procs.alive(host["pid"])


def test_bad_task_input_names_the_field(home: Path):
    # No stack needed to reject input that can never be valid.
    bad_json = run(home, "task", "create", "--operator", "noop", "--payload", "{not json")
    assert bad_json.returncode != 0
    assert "--payload" in bad_json.stderr and "expected a JSON object" in bad_json.stderr
    not_object = run(home, "task", "create", "--operator", "noop", "--payload", "[1, 2]")
    assert not_object.returncode != 0 and "got a JSON list" in not_object.stderr
    bad_id = run(home, "task", "get", "not-a-uuid")
    assert bad_id.returncode != 0 and "expected a UUID" in bad_id.stderr
