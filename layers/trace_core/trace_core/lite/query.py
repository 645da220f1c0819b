"""The Query Service as a Lite component: ``python -m trace_core.query.service`` spawned by `trace-lite up`."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import AliasChoices

from trace_core import errors
from trace_core.lite import procs, state
from trace_core.settings import Settings

NAME = "query"


def service_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the environment of a child process (the standard AWS names where they apply)."""
    env: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, Path):
            value = value.resolve()
        alias = field.validation_alias
        variable = str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"TRACE_{name.upper()}"
        env[variable] = str(value)
    return env


def url(port: int) -> str:
    return f"http://{procs.HOST}:{port}"


def start(settings: Settings) -> state.ComponentRecord:
    """Start ``python -m trace_core.query.service`` on TRACE_QUERY_PORT (a free port when 0) and wait for health."""
    port = settings.query_port or procs.free_port()
    if settings.query_port and procs.port_busy(port):
        raise errors.ComponentError(
            f"{NAME}: port 127.0.0.1:{port} is already in use", component=NAME,
            fix="stop whatever listens there, or choose another port (TRACE_QUERY_PORT)",
        )
    log = settings.home / "logs" / "query.log"
    env = service_env(settings.model_copy(update={"query_port": port, "query_host": procs.HOST}))
    proc = procs.spawn([sys.executable, "-m", "trace_core.query.service"], log, env=env)
    try:
        procs.wait_until(NAME, lambda: _answers(url(port)), proc=proc, log=log, timeout=60)
    except errors.ComponentError:
        procs.stop(proc.pid)
        raise
    return state.ComponentRecord(name=NAME, managed=True, url=url(port), pid=proc.pid, port=port)


def _answers(base: str) -> bool:
    import httpx  # deferred: `trace-lite` commands that never call it do not pay its import

    return httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200


def healthy(record: state.ComponentRecord) -> bool:
    import httpx  # deferred: `trace-lite` commands that never call it do not pay its import

    try:
        return _answers(record.url)
    except httpx.HTTPError:
        return False


def running_url(settings: Settings) -> str:
    """The URL of the stack's Query Service (`trace-lite up`), once it answers; else a ComponentError."""
    record = state.read(settings.home).components.get(NAME)
    if record is None or not healthy(record):
        raise errors.ComponentError("the Query Service is not running", component=NAME,
                                    fix="run `trace-lite up` first")
    return record.url
