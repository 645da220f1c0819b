"""The installed `trace-lite` script, run as a user runs it: usage errors are short and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TRACE_LITE = str(Path(sys.executable).parent / "trace-lite")


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRACE_LITE, *args], check=False, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TRACE_HOME": str(home)})


def test_version(tmp_path: Path) -> None:
    done = _run("--version", home=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("trace-lite ") and done.stderr == ""


@pytest.mark.parametrize("args", [["apply", "--bogus"], ["task", "list", "--limit", "many"], ["nope"]])
def test_usage_errors_are_two_lines_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    done = _run(*args, home=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: trace-lite") and lines[1].startswith("  fix: see `")


def test_the_lite_host_without_an_aws_endpoint_refuses_to_start(tmp_path: Path, database_url: str) -> None:
    # GIVEN a Lite home whose stack has no moto (and no AWS_ENDPOINT_URL) but a reachable database
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(TRACE_HOME=str(tmp_path), TRACE_DATABASE_URL=database_url, AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
               AWS_SECRET_ACCESS_KEY="not-a-real-secret")
    # WHEN the host starts THEN it refuses at once, naming the fix, with no traceback (a worker starts: its
    # operators may need no AWS, and one that does gets no client, see tests/unit/test_aws_endpoint.py)
    done = subprocess.run([TRACE_LITE, "host"], check=False, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode != 0
    assert "no AWS endpoint" in done.stderr and "trace-lite up" in done.stderr
    assert "Traceback" not in done.stderr
