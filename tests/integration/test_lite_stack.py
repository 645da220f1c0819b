"""`trace-lite up | status | down` as a user runs them: real processes, real ports."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
from trace_core.lite import procs

CLI = [sys.executable, "-m", "trace_core.cli"]


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TRACE_HOME": str(home), **(env or {})}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False)


@pytest.fixture
def home():
    # Outside pytest's tmp tree (see tests/fixtures/components.py: pg_admin_url).
    base = Path(tempfile.mkdtemp(prefix="trace-lite-test-"))
    home = base / "lite"
    yield home
    run(home, "down")  # whatever a failing test left running is stopped
    shutil.rmtree(base, ignore_errors=True)


def _recorded(home: Path) -> dict:
    return json.loads((home / "state.json").read_text())["components"]


def test_up_status_down_lifecycle(home: Path):
    # WHEN the stack comes up
    result = run(home, "up")
    assert result.returncode == 0, result.stderr
    components = _recorded(home)
    assert set(components) >= {"postgres", "moto", "anvil"}
    for name in ("postgres", "moto", "anvil"):
        assert components[name]["url"].split("@")[-1].startswith(("127.0.0.1", "http://127.0.0.1"))
        assert procs.alive(components[name]["pid"])
    # THEN migrations are applied and the AWS resources exist
    with psycopg.connect(components["postgres"]["url"]) as conn:
        assert conn.execute("SELECT count(*) FROM state.schema_migrations").fetchone()[0] >= 1
    status = run(home, "status")
    assert status.returncode == 0
    assert status.stdout.count("healthy") == len(components)

    # WHEN up runs again THEN nothing new starts
    again = run(home, "up")
    assert again.returncode == 0, again.stderr
    assert {n: c["pid"] for n, c in _recorded(home).items()} == {n: c["pid"] for n, c in components.items()}

    # WHEN down runs THEN exactly those processes stop
    down = run(home, "down")
    assert down.returncode == 0
    for name in ("postgres", "moto", "anvil"):
        assert not procs.alive(components[name]["pid"]), name
    assert not (home / "state.json").exists()
    assert run(home, "status").returncode == 1


def test_busy_port_fails_naming_component_and_leaves_nothing_running(home: Path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = run(home, "up", env={"TRACE_ANVIL_PORT": str(port)})
    assert result.returncode != 0
    assert f"anvil: port 127.0.0.1:{port} is already in use" in result.stderr
    assert "fix:" in result.stderr
    assert not (home / "state.json").exists()
    # postgres and moto had started before anvil failed: both must be stopped again
    assert "postgres" not in _pids_under(home)


def _pids_under(home: Path) -> str:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return "postgres" if str(home / "postgres") in out else ""


def test_refusing_database_url_is_a_one_line_error(home: Path):
    dead_port = procs.free_port()
    result = run(home, "up", env={"TRACE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{dead_port}/x"})
    assert result.returncode == 1
    assert "postgres: TRACE_DATABASE_URL refused the connection" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (home / "state.json").exists()


def test_missing_node_is_named_with_the_fix(home: Path, tmp_path: Path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run(home, "up", env={"PATH": str(empty)})
    assert result.returncode == 1
    assert "Node.js is not on PATH" in result.stderr
    assert not (home / "state.json").exists()


def test_external_database_url_is_used_and_not_stopped(home: Path, make_database):
    url = make_database(migrated=False)
    result = run(home, "up", env={"TRACE_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert _recorded(home)["postgres"]["managed"] is False
    run(home, "down", env={"TRACE_DATABASE_URL": url})
    with psycopg.connect(url) as conn:  # still up: we did not start it, so we did not stop it
        assert conn.execute("SELECT count(*) FROM state.schema_migrations").fetchone()[0] >= 1


def test_default_home_is_relative_to_the_working_directory():
    # GIVEN no TRACE_HOME (what `make demo` does): the state lives in ./.trace-lite of the current directory
    base = Path(tempfile.mkdtemp(prefix="trace-lite-cwd-"))
    env = {k: v for k, v in os.environ.items() if k != "TRACE_HOME"}
    try:
        up = subprocess.run([*CLI, "up"], capture_output=True, text=True, env=env, cwd=base, timeout=120, check=False)
        assert up.returncode == 0, up.stderr
        assert (base / ".trace-lite" / "state.json").exists()
        status = subprocess.run([*CLI, "status"], capture_output=True, text=True, env=env, cwd=base, timeout=60,
                                check=False)
        assert status.returncode == 0 and "postgres" in status.stdout
    finally:
        subprocess.run([*CLI, "down"], capture_output=True, env=env, cwd=base, timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)
