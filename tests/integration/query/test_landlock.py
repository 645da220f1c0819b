"""Landlock confinement, checked in a child process (a restriction cannot be undone) against a real TCP listener."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from trace_core.query import landlock

pytestmark = pytest.mark.skipif(landlock.abi_version() == 0, reason="Landlock is not available on this kernel")

_CHILD = textwrap.dedent("""
    import json, os, socket, sys
    from pathlib import Path
    from trace_core.query import landlock
    allowed, denied, listener_port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    runtime = {Path(p) for p in (sys.prefix, sys.base_prefix, *[p for p in sys.path if p])}
    outcome = landlock.restrict(read=runtime | {Path("/usr"), Path("/lib"), Path("/lib64")}, write={allowed})
    result = {"enforced": outcome.enforced}
    def attempt(name, fn):
        try:
            fn()
            result[name] = "allowed"
        except OSError as exc:
            result[name] = exc.__class__.__name__
    attempt("write_allowed", lambda: (allowed / "ok.txt").write_text("ok"))
    attempt("read_denied", lambda: (denied / "secret.txt").read_text())
    attempt("write_denied", lambda: (denied / "new.txt").write_text("x"))
    attempt("truncate_denied", lambda: open(denied / "secret.txt", "r+").truncate(0))
    attempt("tcp_connect", lambda: socket.create_connection(("127.0.0.1", listener_port), timeout=2).close())
    print(json.dumps(result))
""")


def test_restrict_confines_reads_writes_and_tcp(tmp_path: Path) -> None:
    # GIVEN a writable directory, a directory holding a secret, and a TCP listener on 127.0.0.1
    allowed, denied = tmp_path / "scratch", tmp_path / "secret"
    allowed.mkdir()
    denied.mkdir()
    (denied / "secret.txt").write_text("token")
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        # WHEN a child process restricts itself to the scratch directory and the runtime
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(allowed), str(denied), str(listener.getsockname()[1])],
            capture_output=True, text=True, timeout=60, check=True,
        )
    import json

    result = json.loads(proc.stdout)
    # THEN it writes only where allowed, cannot read or change the secret, and cannot connect over TCP
    assert result["enforced"] is True
    assert result["write_allowed"] == "allowed"
    assert result["read_denied"] == "PermissionError"
    assert result["write_denied"] == "PermissionError"
    assert result["truncate_denied"] == "PermissionError"
    if landlock.abi_version() >= 4:
        assert result["tcp_connect"] == "PermissionError"
    assert (denied / "secret.txt").read_text() == "token"
