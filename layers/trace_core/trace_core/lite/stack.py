"""`trace-lite up | down | status`: the Lite stack's lifecycle.

Each component is a :class:`Component` with start / healthy / stop and the
components it depends on. `up` keeps what answers, restarts what is dead (a
managed one as managed, Postgres on its own data directory, on its old port
when free) and what depends on a component it restarted, so `up` twice is
harmless and one `up` repairs the stack (docs/decisions/1304). A first `up`
that fails stops what it started before raising a
:class:`~trace_core.errors.ComponentError` naming the cause; a repair that
fails records what runs now, so `status` tells the truth.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg

from trace_core import errors
from trace_core.db import migrate
from trace_core.lite import anvil, health, host_process, moto, postgres, procs, state
from trace_core.lite import query as query_lite
from trace_core.settings import Settings


@dataclasses.dataclass(frozen=True)
class Component:
    name: str
    start: Callable[[Settings, state.StackState], state.ComponentRecord]
    healthy: Callable[[state.ComponentRecord], bool]
    stop: Callable[[Settings, state.ComponentRecord], None]
    depends_on: tuple[str, ...] = ()


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
    # S3 on disk under TRACE_HOME: `down`/`up` and a crash keep every object (docs/decisions/1303).
    proc = moto.start(port, settings.home / "logs" / "moto.log", data_dir=_s3_data(settings))
    return state.ComponentRecord(name="moto", managed=True, url=moto.url(port), pid=proc.pid, port=port,
                                 detail={"data_dir": str(_s3_data(settings))})


def _s3_data(settings: Settings) -> Path:
    return settings.home / "s3"


def _moto_healthy(record: state.ComponentRecord) -> bool:
    import httpx  # deferred: `trace-lite` commands that never call it do not pay its import

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
    chain_dir = _anvil_data(settings)
    # The chain's URL is stored with every chain_sync job: the same port as last time keeps it valid.
    remembered = 0 if settings.anvil_port else anvil.remembered_port(chain_dir)
    port = remembered if remembered and not procs.port_busy(remembered) else _pick_port("anvil", settings.anvil_port)
    log = settings.home / "logs" / "anvil.log"
    proc = anvil.start_durable(port, log, state_dir=chain_dir, chain_id=settings.chain_id)
    anvil.remember_port(chain_dir, port)
    return state.ComponentRecord(name="anvil", managed=True, url=anvil.url(port), pid=proc.pid, port=port,
                                 detail={"states_dir": str(anvil.states_dir_for(log)), "state_dir": str(chain_dir)})


def _anvil_data(settings: Settings) -> Path:
    return settings.home / "anvil"


def _stop_anvil(settings: Settings, record: state.ComponentRecord) -> None:
    _stop_pid(settings, record)  # SIGTERM: anvil dumps the chain to state_dir as it exits
    # Only the spilled old-block states go (a restart cannot use them); the dumped chain stays.
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
    Component("query", _start_query, query_lite.healthy, _stop_pid, depends_on=("postgres", "moto")),
    # Last: it serves the dispatcher API and runs the drainer, reaper and workers on the others.
    Component("host", host_process.start, host_process.healthy, host_process.stop,
              depends_on=("postgres", "moto", "anvil")),
]
DEPENDS_ON = {component.name: component.depends_on for component in COMPONENTS}
# The setting through which a user names their own server instead of a managed one, and the port setting.
URL_SETTINGS = {"postgres": "database_url", "moto": "aws_endpoint_url", "anvil": "rpc_url"}
URL_VARIABLES = {"postgres": "TRACE_DATABASE_URL", "moto": "AWS_ENDPOINT_URL", "anvil": "TRACE_RPC_URL"}
PORT_SETTINGS = {"postgres": "postgres_port", "moto": "moto_port", "anvil": "anvil_port", "query": "query_port",
                 "host": "api_port"}


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
    # boto3 (and chain sync, for recovery): only `up` pays for their import, not every command.
    from trace_core.lite import durability, provision

    try:
        if name == "postgres":
            migrate.apply(settings.database_url or "")
        elif name == "moto":
            provision.provision(settings)
            # A restarted endpoint may have come back without objects Postgres points at: re-extract those.
            durability.recover(settings)
    except errors.TraceError:
        raise
    except Exception as exc:  # a driver's error, said in one line naming the component
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise errors.ComponentError(
            f"{name}: set-up after start failed ({first})", component=name,
            fix=f"see {settings.home / 'logs'}; `trace-lite up` tries again",
        ) from exc


def configured(settings: Settings, current: state.StackState) -> Settings:
    """``settings`` with only the URLs the user configured.

    A URL equal to one this stack started came from the state file (``settings_for``), not
    from the user: it must not turn a dead managed component into an "external" one.
    """
    overrides: dict[str, object] = {}
    for name, field in URL_SETTINGS.items():
        record = current.components.get(name)
        if record is not None and record.managed and getattr(settings, field) == record.url:
            overrides[field] = None
    return settings.model_copy(update=overrides) if overrides else settings


def _keep(component: Component, record: state.ComponentRecord, settings: Settings, restarted: set[str]) -> bool:
    field = URL_SETTINGS.get(component.name)
    wanted = getattr(settings, field) if field else None
    if field and (record.managed != (wanted is None) or (wanted is not None and record.url != wanted)):
        return False  # the environment names another server now (or stopped naming one)
    if health.needs_restart(component.name, DEPENDS_ON, restarted):
        return False
    return component.healthy(record)


def _on_old_port(settings: Settings, record: state.ComponentRecord | None) -> Settings:
    """Bring a managed component back on its recorded port when that is free, so its URL does not change."""
    field = PORT_SETTINGS.get(record.name) if record is not None else None
    if record is None or field is None or not record.managed or not record.port or getattr(settings, field):
        return settings
    if procs.port_busy(record.port):
        return settings
    return settings.model_copy(update={field: record.port})


def up(settings: Settings) -> state.StackState:
    """Bring every component to healthy, keeping what is alive; returns the stack state."""
    current = state.read(settings.home)
    settings = configured(settings, current)
    _check_prerequisites(settings)
    fresh = not current.components
    started: list[tuple[Component, state.ComponentRecord]] = []
    restarted: set[str] = set()
    try:
        for component in COMPONENTS:
            old = current.components.get(component.name)
            if old is not None and _keep(component, old, settings, restarted):
                continue
            if old is not None and old.pid and procs.alive(old.pid):
                # Hung, or alive on a dependency that is gone. A dead pid is never signalled: it may be reused.
                component.stop(settings, old)
            record = component.start(_on_old_port(settings, old), current)
            started.append((component, record))
            restarted.add(component.name)
            current.components[component.name] = record
            state.write(settings.home, current)
            _after_start(settings_for(settings, current), component.name)
    except Exception:
        if fresh:
            for component, record in reversed(started):
                component.stop(settings, record)
                current.components.pop(component.name, None)
        if current.components:
            # A repair keeps what runs; a component it could not restart keeps its old record (status: down).
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


@dataclasses.dataclass(frozen=True)
class ComponentStatus:
    record: state.ComponentRecord
    health: health.Health


def status(settings: Settings) -> dict[str, ComponentStatus]:
    """Each recorded component, its health now, and what a dead dependency makes of it."""
    current = state.read(settings.home)
    records = {c.name: r for c in COMPONENTS if (r := current.components.get(c.name)) is not None}
    own = {
        component.name: health.HEALTHY if component.healthy(record) else health.Health("down", _why_down(record))
        for component in COMPONENTS
        if (record := records.get(component.name)) is not None
    }
    assessed = health.with_dependencies(own, DEPENDS_ON)
    return {name: ComponentStatus(records[name], assessed[name]) for name in records}


def _why_down(record: state.ComponentRecord) -> str:
    if not record.managed:
        return f"external ({URL_VARIABLES.get(record.name, 'configured')}) does not answer"
    if record.pid and not procs.alive(record.pid):
        return f"process {record.pid} is gone"
    return "does not answer"
