"""`trace-lite up | down | status`: the Lite stack's lifecycle.

Each component is a :class:`Component` with start / healthy / stop. `up`
starts what is not already running and healthy (so `up` twice is harmless),
records it in the state file, and on any failure stops what this call started
before raising a :class:`~trace_core.errors.ComponentError` naming the cause.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable

import httpx
import psycopg

from trace_core import errors
from trace_core.db import migrate
from trace_core.lite import anvil, host_process, moto, postgres, procs, provision, state
from trace_core.query.service import lite as query_lite
from trace_core.settings import Settings


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    start: Callable[[Settings, state.StackState], state.ComponentRecord]
    healthy: Callable[[state.ComponentRecord], bool]
    stop: Callable[[Settings, state.ComponentRecord], None]


def _pick_port(component: str, configured: int) -> int:
    if configured == 0:
        return procs.free_port()
    if procs.port_busy(configured):
        raise errors.ComponentError(
            f"{component}: port 127.0.0.1:{configured} is already in use",
            component=component,
            fix=f"stop whatever listens there, or choose another port (TRACE_{component.upper()}_PORT)",
        )
    return configured


# ---------------------------------------------------------------- postgres
def _pg_data(settings: Settings) -> Path:
    return settings.home / "postgres"


def _start_postgres(settings: Settings, _: state.StackState) -> state.ComponentRecord:
    if settings.database_url:
        try:
            with psycopg.connect(settings.database_url, connect_timeout=5):
                pass
        except psycopg.OperationalError as exc:
            raise errors.ComponentError(
                f"postgres: TRACE_DATABASE_URL refused the connection ({str(exc).strip().splitlines()[0]})",
                component="postgres",
                fix="start that server, correct the URL, or unset TRACE_DATABASE_URL to use the embedded one",
            ) from exc
        return state.ComponentRecord(name="postgres", managed=False, url=settings.database_url)
    port = _pick_port("postgres", settings.postgres_port)
    pid = postgres.start(_pg_data(settings), port)
    return state.ComponentRecord(
        name="postgres", managed=True, url=postgres.url(port), pid=pid, port=port,
        detail={"data_dir": str(_pg_data(settings))},
    )


def _postgres_healthy(record: state.ComponentRecord) -> bool:
    try:
        with psycopg.connect(record.url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _stop_postgres(settings: Settings, record: state.ComponentRecord) -> None:
    if record.managed:
        postgres.stop(Path(record.detail.get("data_dir", _pg_data(settings))))


# ---------------------------------------------------------------- moto
def _start_moto(settings: Settings, _: state.StackState) -> state.ComponentRecord:
    if settings.aws_endpoint_url:  # LocalStack or another endpoint the user runs
        return state.ComponentRecord(name="moto", managed=False, url=settings.aws_endpoint_url)
    port = _pick_port("moto", settings.moto_port)
    proc = moto.start(port, settings.home / "logs" / "moto.log")
    return state.ComponentRecord(name="moto", managed=True, url=moto.url(port), pid=proc.pid, port=port)


def _moto_healthy(record: state.ComponentRecord) -> bool:
    try:
        if record.managed:
            return moto.healthy(record.port or 0)
        return httpx.get(record.url, timeout=2.0).status_code < 500
    except Exception:  # noqa: BLE001
        return False


def _stop_pid(_: Settings, record: state.ComponentRecord) -> None:
    if record.managed and record.pid:
        procs.stop(record.pid)


# ---------------------------------------------------------------- anvil
def _start_anvil(settings: Settings, _: state.StackState) -> state.ComponentRecord:
    if settings.rpc_url:
        return state.ComponentRecord(name="anvil", managed=False, url=settings.rpc_url)
    port = _pick_port("anvil", settings.anvil_port)
    log = settings.home / "logs" / "anvil.log"
    proc = anvil.start(port, log, chain_id=settings.chain_id)
    return state.ComponentRecord(name="anvil", managed=True, url=anvil.url(port), pid=proc.pid, port=port,
                                 detail={"states_dir": str(anvil.states_dir_for(log))})


def _stop_anvil(settings: Settings, record: state.ComponentRecord) -> None:
    _stop_pid(settings, record)
    if record.managed and "states_dir" in record.detail:
        anvil.remove_states(Path(record.detail["states_dir"]))


def _anvil_healthy(record: state.ComponentRecord) -> bool:
    try:
        anvil.chain_id_of(record.url)
        return True
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------- query service
def _start_query(settings: Settings, current: state.StackState) -> state.ComponentRecord:
    # Needs the stack's database and AWS endpoint: started after postgres (migrated) and moto.
    return query_lite.start(settings_for(settings, current))


COMPONENTS: list[Component] = [
    Component("postgres", _start_postgres, _postgres_healthy, _stop_postgres),
    Component("moto", _start_moto, _moto_healthy, _stop_pid),
    Component("anvil", _start_anvil, _anvil_healthy, _stop_anvil),
    Component("query", _start_query, query_lite.healthy, _stop_pid),
    # Last: it serves the dispatcher API and runs the drainer, reaper and workers on the others.
    Component("host", host_process.start, host_process.healthy, host_process.stop),
]


def settings_for(settings: Settings, current: state.StackState) -> Settings:
    """``settings`` with the running stack's endpoints filled in where the environment left them unset."""
    overrides: dict[str, object] = {}
    if "postgres" in current.components and not settings.database_url:
        overrides["database_url"] = current.components["postgres"].url
    if "moto" in current.components and not settings.aws_endpoint_url:
        overrides["aws_endpoint_url"] = current.components["moto"].url
    if "anvil" in current.components and not settings.rpc_url:
        overrides["rpc_url"] = current.components["anvil"].url
    return settings.model_copy(update=overrides)


def _check_prerequisites(settings: Settings) -> None:
    if not settings.rpc_url:
        anvil.binary()  # raises naming the fix
        if shutil.which("node") is None:
            raise errors.ComponentError(
                "anvil: Node.js is not on PATH", component="anvil", fix="install Node.js 18+ and run `make install`"
            )


def _after_start(settings: Settings, name: str) -> None:
    """Per-component set-up that needs the component up: migrations, buckets and queues."""
    if name == "postgres":
        migrate.apply(settings.database_url or "")
    elif name == "moto":
        provision.provision(settings)


def up(settings: Settings) -> state.StackState:
    """Start every component that is not already running and healthy; returns the stack state."""
    _check_prerequisites(settings)
    current = state.read(settings.home)
    started: list[tuple[Component, state.ComponentRecord]] = []
    try:
        for component in COMPONENTS:
            record = current.components.get(component.name)
            if record is not None and component.healthy(record):
                continue
            record = component.start(settings, current)
            started.append((component, record))
            current.components[component.name] = record
            state.write(settings.home, current)
            _after_start(settings_for(settings, current), component.name)
    except Exception:
        for component, record in reversed(started):
            component.stop(settings, record)
            current.components.pop(component.name, None)
        if current.components:
            state.write(settings.home, current)
        else:
            state.clear(settings.home)
        raise
    return current


def down(settings: Settings) -> list[str]:
    """Stop exactly what `up` started (managed components); returns their names."""
    current = state.read(settings.home)
    stopped = []
    for component in reversed(COMPONENTS):
        record = current.components.get(component.name)
        if record is None:
            continue
        component.stop(settings, record)
        if record.managed:
            stopped.append(component.name)
    state.clear(settings.home)
    return stopped


def status(settings: Settings) -> dict[str, tuple[state.ComponentRecord, bool]]:
    """Each recorded component and whether it answers now."""
    current = state.read(settings.home)
    return {
        component.name: (record, component.healthy(record))
        for component in COMPONENTS
        if (record := current.components.get(component.name)) is not None
    }
