"""`trace-lite logs [COMPONENT] [--follow]` over a Lite home's log files; secrets masked as they are shown."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

KEY = "0f3a9c1e5b7d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e2b4d6f8a0c2e4b6d8f0a"


def _write(home: Path) -> None:
    (home / "logs").mkdir()
    (home / "postgres").mkdir()
    (home / "logs" / "anvil.log").write_text("".join(f"anvil line {i}\n" for i in range(50)))
    (home / "logs" / "host.log").write_text(f"worker: rpc https://rpc.ankr.com/monad_testnet/{KEY} timed out\n")
    (home / "postgres" / "server.log").write_text("LOG:  database system is ready to accept connections\n")


def test_one_component_shows_its_last_lines_with_secrets_masked(cli, lite_env: Path):
    # GIVEN a home whose components wrote logs
    _write(lite_env)
    # WHEN asking for anvil's last 3 lines THEN exactly those are printed
    code, out, _ = cli("logs", "anvil", "--lines", "3")
    assert code == 0 and out.splitlines() == ["anvil line 47", "anvil line 48", "anvil line 49"]
    # AND the host's log is shown with the RPC key masked
    code, out, _ = cli("logs", "host")
    assert code == 0 and "monad_testnet/***" in out and KEY not in out


def test_no_component_shows_the_tail_of_each(cli, lite_env: Path):
    _write(lite_env)
    code, out, _ = cli("logs", "-n", "1")
    # THEN every component has a header (Postgres' log from its data directory), missing ones say so
    assert code == 0
    for name in ("postgres", "moto", "anvil", "query", "host"):
        assert f"==> {name}: " in out
    assert "ready to accept connections" in out and "anvil line 49" in out
    assert "(no log yet: moto" in out


def test_an_unknown_component_is_a_usage_error_listing_the_valid_ones(cli):
    code, _, err = cli("logs", "postgress")
    assert code == 2 and "expected one of postgres, moto, anvil, query, host" in err


class _Lines:
    """Lines of a child's stdout, each waited for at most ``timeout`` seconds (a hang fails, not blocks)."""

    def __init__(self, stream, timeout: float = 15.0) -> None:
        self.fd, self.timeout, self.buffer = stream.fileno(), timeout, b""

    def next(self) -> str:
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self.fd], [], [], left)[0], f"no line within {self.timeout}s"
            chunk = os.read(self.fd, 4096)
            assert chunk, "stdout closed"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def test_follow_prints_new_lines_until_ctrl_c(lite_env: Path):
    # GIVEN the installed trace-lite following the host log
    _write(lite_env)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "trace-lite"), "logs", "host", "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        lines = _Lines(proc.stdout)
        assert "timed out" in lines.next()
        # WHEN a line with a key is appended THEN it is printed, masked
        with open(lite_env / "logs" / "host.log", "a") as log:
            log.write(f"retrying https://mainnet.infura.io/v3/{KEY[:32]}\n")
        assert lines.next() == "retrying https://mainnet.infura.io/v3/***"
        # WHEN the user presses Ctrl-C THEN it ends cleanly
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
