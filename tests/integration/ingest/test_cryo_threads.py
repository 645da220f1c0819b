"""The installed Cryo sizes its runtime as TRACE_WORKER_CRYO_THREADS says (decision 1001, point 11)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from trace_core.lite import procs

# A fresh process (the runtime is built once per process, at its first freeze): apply the setting, run one
# freeze against a port nobody listens on (it fails at once, after building the runtime), count its threads.
PROBE = textwrap.dedent("""
    import os, sys
    from trace_core.worker import cryo_threads
    threads = cryo_threads.apply(int(sys.argv[2]) if sys.argv[2] else None)
    import cryo
    try:
        cryo.freeze(["blocks"], blocks=["0:1"], rpc=sys.argv[1], output_dir=sys.argv[3], no_report=True,
                    verbose=False, max_retries=0)
    except Exception:
        pass
    names = []
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            names.append(open(f"/proc/{os.getpid()}/task/{tid}/comm").read().strip())
        except FileNotFoundError:  # a thread that has just ended (the freeze's own executor thread)
            pass
    print(threads, names.count("tokio-runtime-w"))
""")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc (Linux)")
@pytest.mark.parametrize("setting", ["1", "3", ""])
def test_cryos_runtime_has_the_threads_the_setting_names(setting: str, tmp_path):
    dead = f"http://{procs.HOST}:{procs.free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "TOKIO_WORKER_THREADS"}
    out = subprocess.run([sys.executable, "-c", PROBE, dead, setting, str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout.split()
    reported, running = int(out[0]), int(out[1])
    expected = int(setting) if setting else len(os.sched_getaffinity(0))  # unset: Cryo's default, one per core
    assert (reported, running) == (expected, expected)
