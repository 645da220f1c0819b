"""The installed Cryo sizes its runtime as TRACE_WORKER_CRYO_THREADS says (decision 1001, point 11)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from trace_core.lite import procs

# A fresh process (the runtime is built once per process, at its first freeze): apply the setting, run one
# freeze against a port nobody listens on (it fails at once, after building the runtime), count its threads,
# and end the way our processes do, so a crash at exit cannot hide the count (decision 1302).
# A runtime thread is named by itself once it first runs: on a busy machine some are still unnamed when the
# freeze returns, so the count is read until it reaches the setting (or 5 s pass), then once more a little
# later, so a runtime larger than the setting has time to show.
PROBE = textwrap.dedent("""
    import os, sys, time
    from trace_core.worker import cryo_threads, process_exit
    threads = cryo_threads.apply(int(sys.argv[2]) if sys.argv[2] else None)
    import cryo
    try:
        cryo.freeze(["blocks"], blocks=["0:1"], rpc=sys.argv[1], output_dir=sys.argv[3], no_report=True,
                    verbose=False, max_retries=0)
    except Exception:
        pass

    def runtime_threads():
        names = []
        for tid in os.listdir(f"/proc/{os.getpid()}/task"):
            try:
                names.append(open(f"/proc/{os.getpid()}/task/{tid}/comm").read().strip())
            except FileNotFoundError:  # a thread that has just ended (the freeze's own executor thread)
                pass
        return names.count("tokio-runtime-w")

    deadline = time.monotonic() + 5
    while runtime_threads() < threads and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    print(threads, runtime_threads())
    process_exit.end(0)
""")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc (Linux)")
@pytest.mark.parametrize("setting", ["1", "3", ""])
def test_cryos_runtime_has_the_threads_the_setting_names(setting: str, tmp_path):
    dead = f"http://{procs.HOST}:{procs.free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "TOKIO_WORKER_THREADS"}
    probe = subprocess.run([sys.executable, "-c", PROBE, dead, setting, str(tmp_path)], capture_output=True,
                           text=True, env=env, timeout=60, check=False)
    assert probe.returncode == 0, probe.stderr
    reported, running = map(int, probe.stdout.split())
    expected = int(setting) if setting else len(os.sched_getaffinity(0))  # unset: Cryo's default, one per core
    assert (reported, running) == (expected, expected)
