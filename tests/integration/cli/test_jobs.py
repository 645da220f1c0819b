"""`trace-lite jobs list | delete` on real Postgres: what it states, when it asks, when it refuses."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from trace_core.chainsync import jobs
from trace_core.chainsync import spec as spec_mod
from trace_core.dispatcher import models, tasks

SPEC = """
name: {name}
chain_id: 10143
rpc: {{urls: ["http://127.0.0.1:1"]}}
datasets: [blocks, logs]
mode: {{type: fixed_target, from_block: 0, to_block: 40}}
chunk_size: 20
max_attempts: 1
"""


def _applied(db, name: str) -> jobs.ApplyResult:
    return jobs.apply(db, spec_mod.parse(SPEC.format(name=name), environ={}))


def _fail_every_task(db, job_id) -> None:
    """What a worker does when the RPC is gone for good: every range task fails (so nothing is in flight)."""
    jobs.set_paused(db, next(j["name"] for j in jobs.list_jobs(db) if j["job_id"] == job_id), True)
    for row in db.execute("SELECT task_id FROM state.tasks WHERE job_id = %s", (job_id,)).fetchall():
        lease = tasks.claim(db, row["task_id"], worker_id="test", lease_seconds=30)
        tasks.complete(db, lease.task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                       result=models.Failure(error="rpc gone", retryable=False))


def _rows(db, job_id) -> int:
    return sum(db.execute(f"SELECT count(*) AS n FROM {table} WHERE job_id = %s",
                          (job_id,)).fetchone()["n"]
               for table in ("state.jobs", "state.sync_streams", "state.sync_ranges", "state.tasks"))


def test_a_job_with_work_in_flight_is_refused_with_the_fix(cli, db):
    # GIVEN an active job with queued range tasks
    job = _applied(db, "cli-busy")
    # WHEN deleting it, even with --yes
    code, _, err = cli("jobs", "delete", "cli-busy", "--yes")
    # THEN it is refused in two lines that say to pause it first, and nothing is deleted
    assert code == 1 and "2 range task(s) queued or running" in err
    assert "fix: pause it first (`trace-lite chain-sync pause cli-busy`)" in err
    assert _rows(db, job.job_id) > 0


def test_without_a_terminal_it_asks_for_yes_then_deletes_stating_what_stays(cli, db):
    # GIVEN a job whose tasks have all failed (nothing in flight), listed by `jobs list`
    job = _applied(db, "cli-done")
    _fail_every_task(db, job.job_id)
    code, out, _ = cli("jobs", "list")
    assert code == 0 and "cli-done" in out and "paused" in out
    # WHEN deleted with no terminal to confirm on and no --yes THEN it refuses and deletes nothing
    code, out, err = cli("jobs", "delete", "cli-done")
    assert code == 1 and "without confirmation" in err and "--yes" in err
    assert _rows(db, job.job_id) > 0
    # WHEN deleted with --yes THEN it states that the data is kept, and the job is gone
    code, out, err = cli("jobs", "delete", "cli-done", "--yes")
    assert code == 0, err
    assert "KEPT" in out and "--drop-data" in out and "job cli-done deleted" in out
    assert _rows(db, job.job_id) == 0
    # AND deleting it again names the job that is not there
    code, _, err = cli("jobs", "delete", "cli-done", "--yes")
    assert code == 1 and "no chain_sync job named 'cli-done'" in err


@pytest.mark.parametrize(("answer", "code", "left"), [("n", 1, True), ("y", 0, False)])
def test_on_a_terminal_it_asks_first(lite_env: Path, db, answer: str, code: int, left: bool):
    # GIVEN a deletable job and the installed trace-lite on a terminal
    job = _applied(db, f"cli-tty-{answer}")
    _fail_every_task(db, job.job_id)
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "trace-lite"), "jobs", "delete", f"cli-tty-{answer}",
                             "--drop-data"], stdin=secondary, stdout=secondary, stderr=secondary, env=dict(os.environ))
    os.close(secondary)
    try:
        seen = b""
        while b"[y/N]" not in seen:
            chunk = os.read(primary, 4096)
            assert chunk, seen
            seen += chunk
        # WHEN the user answers
        os.write(primary, f"{answer}\n".encode())
        assert proc.wait(timeout=30) == code
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    # THEN it stated what --drop-data deletes before asking, and did what the answer said
    text = seen.decode(errors="replace")
    assert "DELETED from the registry and storage" in text and "Traceback" not in text
    assert (_rows(db, job.job_id) > 0) is left
    assert ("cancelled: nothing deleted" in text) is left
