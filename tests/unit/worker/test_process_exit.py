"""The status a process ends with through ``process_exit`` (each case in its own process: once Cryo is
loaded, the wrapper ends the process it runs in). Real freezes: tests/integration/worker/test_process_exit.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

ENDING = textwrap.dedent("""
    import sys, threading, time
    from trace_core.worker import process_exit
    if sys.argv[1] == "cryo":
        import cryo

    @process_exit.entry_point
    def main():
        # A non-daemon thread: an ordinary exit waits for it, process_exit.end does not.
        threading.Thread(target=lambda: (time.sleep(0.3), print("joined", flush=True))).start()
        {body}

    print("returned", main(), flush=True)
""")


def ending(body: str, cryo: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENDING.format(body=body), "cryo" if cryo else "plain"],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(("body", "status", "stderr"), [
    ("return None", 0, ""),
    ("return 4", 4, ""),
    ("sys.exit(-1)", 255, ""),
    ("sys.exit('bad setting: TRACE_X')", 1, "bad setting: TRACE_X"),
    ("raise ValueError('boom')", 1, "ValueError: boom"),
    ("raise KeyboardInterrupt", 130, "KeyboardInterrupt"),
])
def test_with_cryo_loaded_the_process_ends_with_the_status_python_would_give(body: str, status: int, stderr: str):
    ended = ending(body, cryo=True)
    assert ended.returncode == status, ended.stderr
    assert stderr in ended.stderr
    # AND it ended there: no return to the caller, no waiting for the interpreter's threads
    assert "returned" not in ended.stdout and "joined" not in ended.stdout


def test_without_cryo_the_entry_point_changes_nothing():
    ended = ending("return 4", cryo=False)
    assert (ended.returncode, ended.stdout.split()) == (0, ["returned", "4", "joined"])
    failed = ending("sys.exit(3)", cryo=False)
    assert (failed.returncode, failed.stdout) == (3, "joined\n")
