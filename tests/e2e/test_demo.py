"""`trace-lite demo` end to end on a small chain: up, seed, sync, analytics, report; then again, reusing it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "trace_core.cli"]


@pytest.fixture
def home():
    base = Path(tempfile.mkdtemp(prefix="trace-demo-test-"))
    yield base / "lite"
    subprocess.run([*CLI, "down"], env=clean_env(base / "lite"), capture_output=True, timeout=120, check=False)
    shutil.rmtree(base, ignore_errors=True)


def clean_env(home: Path) -> dict[str, str]:
    """What a user's shell would have: no Trace or AWS endpoint settings from other tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACE_", "AWS_ENDPOINT"))}
    return {**env, "TRACE_HOME": str(home)}


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, env=clean_env(home), check=False)


@pytest.mark.timeout(900)
def test_demo_runs_to_the_end_and_leaves_the_stack_up(home: Path):
    first = run(home, "demo", "--blocks", "300", "--timeout", "240")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    for heading in ("1. The Lite stack", "2. A Monad-like local chain", "3. Chain sync", "4. Analytics"):
        assert heading in out
    for title in ("Total supply", "holders", "Stake by validator"):
        assert title.lower() in out.lower(), title
    report = home / "reports" / "index.html"
    assert report.exists() and "<img" in report.read_text()
    for png in ("total_supply.png", "top_holders.png", "staking_concentration.png"):
        assert (home / "reports" / png).stat().st_size > 10_000
    assert "trace-lite down" in out

    # the stack is still up: a user query answers, and equals the synced block count (blocks 0..300)
    query = run(home, "query", "select count(*) as n from blocks", "--format", "json")
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"n": 301}]

    # a second demo reuses the stack, the chain and the synced data
    second = run(home, "demo", "--blocks", "300", "--timeout", "240")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reusing the seeded chain" in second.stdout
    assert "job monad-local: unchanged" in second.stdout
