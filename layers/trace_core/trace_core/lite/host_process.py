"""The ``host`` component of `trace-lite up`: a `trace-lite host` process (see :mod:`trace_core.lite.host`).

Kept apart from the host itself so `up`/`status` do not import the dispatcher and worker.
"""

from __future__ import annotations

import sys

from trace_core import errors
from trace_core.lite import procs, state
from trace_core.settings import Settings

HEALTH_PATH = "/__host/health"


def url(port: int) -> str:
    return f"http://{procs.HOST}:{port}"


def _environment(settings: Settings, current: state.StackState) -> dict[str, str]:
    """The running stack's endpoints, passed explicitly (settings from the environment win)."""
    components = current.components
    env = {"TRACE_HOME": str(settings.home)}
    database = settings.database_url or (components["postgres"].url if "postgres" in components else None)
    endpoint = settings.aws_endpoint_url or (components["moto"].url if "moto" in components else None)
    rpc = settings.rpc_url or (components["anvil"].url if "anvil" in components else None)
    if database:
        env["TRACE_DATABASE_URL"] = database
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    if rpc:
        env["TRACE_RPC_URL"] = rpc
    return env


def start(settings: Settings, current: state.StackState) -> state.ComponentRecord:
    """Spawn `python -m trace_core.cli host` on the API port and wait until it answers."""
    port = settings.api_port or procs.free_port()
    if settings.api_port and procs.port_busy(port):
        raise errors.ComponentError(
            f"host: port 127.0.0.1:{port} is already in use",
            component="host",
            fix="stop whatever listens there, or choose another port (TRACE_API_PORT)",
        )
    env = _environment(settings, current)
    env["TRACE_API_PORT"] = str(port)
    log = settings.home / "logs" / "host.log"
    proc = procs.spawn([sys.executable, "-m", "trace_core.cli", "host", "--port", str(port)], log, env=env)
    procs.wait_until("host", lambda: healthy_at(url(port)), proc=proc, log=log, timeout=60)
    return state.ComponentRecord(name="host", managed=True, url=url(port), pid=proc.pid, port=port,
                                 detail={"log": str(log)})


def healthy_at(base_url: str) -> bool:
    import httpx  # deferred: `trace-lite` commands that never call it do not pay its import

    response = httpx.get(base_url + HEALTH_PATH, timeout=2.0)
    return response.status_code == 200 and bool(response.json().get("ok"))


def healthy(record: state.ComponentRecord) -> bool:
    try:
        return healthy_at(record.url)
    except Exception:  # noqa: BLE001 - not answering is "down"
        return False


def stop(_: Settings, record: state.ComponentRecord) -> None:
    """SIGTERM (workers finish or give back their leases), SIGKILL if it lingers."""
    if record.managed and record.pid:
        procs.stop(record.pid, timeout=30)
