"""A real `trace-lite worker` process: SIGTERM (finish / abandon) and SIGKILL mid-task."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from trace_core.dispatcher import errors as dispatcher_errors
from trace_core.dispatcher import models, tasks
from trace_core.worker import allocator

from tests.integration.worker.conftest import events, wait_for

pytestmark = pytest.mark.usefixtures("dispatcher_loop")


def test_sigterm_finish_completes_the_running_task_then_exits(spawn_worker, create, get_task, attempts,
                                                              tmp_path: Path):
    # GIVEN a worker process running a 2 s task
    log = tmp_path / "runs.jsonl"
    proc = spawn_worker("--on-term", "finish")
    task = create("sleep", {"seconds": 2.0, "log": str(log)})
    wait_for(lambda: events(log))
    # WHEN it gets SIGTERM mid-task
    os.kill(proc.pid, signal.SIGTERM)
    # THEN it finishes the task, completes it, and exits cleanly
    assert proc.wait(timeout=20) == 0, proc.log.read_text()  # type: ignore[attr-defined]
    assert get_task(task.task_id).status == "completed"
    assert [a["outcome"] for a in attempts(task.task_id)] == ["succeeded"]
    assert [e["event"] for e in events(log)] == ["start", "end"]


def test_sigterm_abandon_gives_the_lease_back_and_exits_at_once(spawn_worker, create, get_task, attempts,
                                                                tmp_path: Path):
    log = tmp_path / "runs.jsonl"
    proc = spawn_worker("--on-term", "abandon", "--poll-seconds", "60")
    task = create("sleep", {"seconds": 60, "log": str(log)})
    wait_for(lambda: events(log))
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.log.read_text()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 10  # did not sit out the 60 s task
    # THEN the attempt ended as abandoned and the task is ready for an immediate retry
    [attempt] = attempts(task.task_id)
    assert attempt["outcome"] == "abandoned"
    after = get_task(task.task_id)
    assert after.status == "queued" and after.attempt == 1


def test_sigkill_mid_task_is_reaped_retried_once_and_the_dead_attempt_is_fenced_off(
    spawn_worker, create, get_task, attempts, db_pool, tmp_path: Path
):
    # GIVEN a worker process with a 2 s lease running a 4 s task
    log = tmp_path / "runs.jsonl"
    doomed = spawn_worker(lease_seconds=2)
    task = create("sleep", {"seconds": 4.0, "log": str(log)}, backoff_base_ms=0)
    wait_for(lambda: events(log))
    [first] = attempts(task.task_id)
    # WHEN it is killed with SIGKILL mid-task, and a healthy worker is around
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    spawn_worker(lease_seconds=2)
    # THEN the reaper expires attempt 1, attempt 2 runs, and the task completes once
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=30)
    assert [a["outcome"] for a in attempts(task.task_id)] == ["expired", "succeeded"]
    assert [e["event"] for e in events(log)].count("end") == 1
    # AND the dead worker's late completion of attempt 1 is rejected by the fence
    stale = (dispatcher_errors.StaleAttemptError, dispatcher_errors.LeaseExpiredError)
    with db_pool.connection() as conn, pytest.raises(stale):
        tasks.complete(conn, task.task_id, attempt=1, lease_token=first["lease_token"],
                       result=models.Success(outputs={"late": True}))
    assert get_task(task.task_id).outputs == {"slept": 4.0}


@pytest.mark.skipif(not os.path.isdir("/proc/self/map_files"), reason="reads /proc/PID/maps (Linux)")
def test_a_worker_process_runs_under_the_allocator_its_settings_choose(spawn_worker, create, get_task):
    # GIVEN the default setting (auto) and a worker started the way `trace-lite worker` is
    chosen = allocator.choose("auto")
    assert chosen is not None  # jemalloc from the system, else the mimalloc wheel the project installs
    proc = spawn_worker()
    # THEN the process (same pid: it re-executed itself) has that library mapped, says so, and works
    wait_for(lambda: "malloc=" in proc.log.read_text())  # type: ignore[attr-defined]
    maps = Path(f"/proc/{proc.pid}/maps").read_text()
    assert os.path.basename(chosen).split(".so")[0] in maps
    assert f"malloc={allocator.name_of(chosen)}" in proc.log.read_text()  # type: ignore[attr-defined]
    task = create("noop")
    wait_for(lambda: get_task(task.task_id).status == "completed")
    # AND with TRACE_WORKER_ALLOCATOR=system it keeps glibc's malloc
    plain = spawn_worker(env={"TRACE_WORKER_ALLOCATOR": "system", "LD_PRELOAD": ""})
    wait_for(lambda: "malloc=" in plain.log.read_text())  # type: ignore[attr-defined]
    assert "malloc=glibc" in plain.log.read_text()  # type: ignore[attr-defined]
    assert "jemalloc" not in Path(f"/proc/{plain.pid}/maps").read_text()
    assert "mimalloc" not in Path(f"/proc/{plain.pid}/maps").read_text()


def test_a_worker_refuses_an_allocator_library_that_is_not_there(spawn_worker, tmp_path: Path):
    with pytest.raises(AssertionError) as info:
        spawn_worker(env={"TRACE_WORKER_ALLOCATOR": str(tmp_path / "nope.so")})
    assert "TRACE_WORKER_ALLOCATOR" in str(info.value) and "nope.so" in str(info.value)


def test_a_worker_sizes_cryos_runtime_as_its_settings_say(spawn_worker):
    # The variable reaches Cryo (tests/integration/ingest/test_cryo_threads.py); here, the worker applies it.
    sized = spawn_worker(env={"TRACE_WORKER_CRYO_THREADS": "3"})
    wait_for(lambda: "cryo_threads=" in sized.log.read_text())  # type: ignore[attr-defined]
    assert "cryo_threads=3" in sized.log.read_text()  # type: ignore[attr-defined]
    default = spawn_worker(env={"TOKIO_WORKER_THREADS": ""})
    wait_for(lambda: "cryo_threads=" in default.log.read_text())  # type: ignore[attr-defined]
    assert f"cryo_threads={len(os.sched_getaffinity(0))}" in default.log.read_text()  # type: ignore[attr-defined]
