"""``moto_server``: the embedded AWS endpoint (S3, SQS, Secrets Manager, SES, EventBridge)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from trace_core.lite import procs


def url(port: int) -> str:
    return f"http://{procs.HOST}:{port}"


def start(port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = procs.spawn([sys.executable, "-m", "moto.server", "-H", procs.HOST, "-p", str(port)], log)
    procs.wait_until("moto_server", lambda: healthy(port), proc=proc, log=log, timeout=30)
    return proc


def healthy(port: int) -> bool:
    response = httpx.get(f"{url(port)}/moto-api/", timeout=1.0)
    return response.status_code == 200
