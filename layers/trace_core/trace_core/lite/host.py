"""The local Lambda host: runs the platform's Lambda handlers unchanged on one machine.

What it runs is generated from the platform declaration (``trace_core.platform``,
:func:`default_spec`): every declared function with its trigger and timeout, each
with its own settings, loaded from the environment CDK would give it on AWS
(its declared settings, from the host's). The triggers:

- HTTP on 127.0.0.1 becomes API Gateway HTTP API (payload 2.0) events for the
  API function (the dispatcher API), served by uvicorn with API Gateway's body
  limit and read deadlines (:mod:`trace_core.lite.host_http`);
- timers become EventBridge scheduled events (outbox drainer, lease reaper;
  EventBridge schedule rules never fire in moto, so the host drives them). The
  drainer also runs as soon as an outbox row commits (LISTEN ``trace_outbox``,
  fed by a trigger) and after each API write, so a wake-up does not wait a tick;
- queue triggers turn received messages into SQS batch events and ack all but
  the ``batchItemFailures`` (a failed invocation acks nothing), like Lambda's
  SQS event source;
- ``workers`` worker loops (the Fargate workers of AWS) run in-process.

``trace-lite host`` runs it in the foreground; ``trace-lite up`` starts it as
the ``host`` component. Each function's handler gets its own settings with the
host's pool and queue driver through ``trace_core.dispatcher.deps.injected_in_thread``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from trace_core import errors, platform
from trace_core import settings as settings_mod
from trace_core.db import pool as pool_mod
from trace_core.dispatcher import deps
from trace_core.lite import anvil, host_events, host_functions, host_http, host_process, procs
from trace_core.queue import base, factory, listener
from trace_core.settings import Settings
from trace_core.worker import config as worker_config
from trace_core.worker import direct, runner

log = logging.getLogger(__name__)

HEALTH_PATH = host_process.HEALTH_PATH
OUTBOX_CHANNEL = "trace_outbox"


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Invoke ``function`` with a scheduled event every ``every_seconds`` (and on outbox commits if asked)."""

    function: str
    every_seconds: float
    wake_on_outbox: bool = False


@dataclasses.dataclass(frozen=True)
class QueueTrigger:
    """Feed ``queue``'s messages to ``function`` as SQS batch events of up to ``batch_size``."""

    queue: str
    function: str
    batch_size: int = 10
    visibility_seconds: int = 30


@dataclasses.dataclass(frozen=True)
class HostSpec:
    """What the host runs: where the functions are, which event source feeds each, and per function
    its timeout and its own settings (a function missing there gets 30 s and the host's settings)."""

    functions_root: Path
    api_function: str | None = "dispatcher_api"
    schedules: tuple[Schedule, ...] = ()
    queue_triggers: tuple[QueueTrigger, ...] = ()
    workers: int = 1
    timeouts: Mapping[str, float] = dataclasses.field(default_factory=dict)
    settings: Mapping[str, Settings] = dataclasses.field(default_factory=dict)

    @property
    def function_names(self) -> list[str]:
        """Every function the host loads: the API's, then the scheduled and the queue-fed ones."""
        names = [self.api_function] if self.api_function else []
        names += [s.function for s in self.schedules] + [t.function for t in self.queue_triggers]
        return list(dict.fromkeys(names))


def default_spec(settings: Settings, declared: platform.Platform = platform.PLATFORM) -> HostSpec:
    """The declared functions as the CDK app wires them, on Lite's clock.

    Schedules run every ``TRACE_HOST_TICK_SECONDS`` (never more often than a schedule's
    ``local_floor_seconds``); queue sources feed batches of their declared size; each function gets
    the settings it declares, loaded from its own environment, as on AWS.
    """
    http = list(declared.http_functions())
    if len(http) > 1:
        raise errors.ComponentError(
            f"the Lite host serves one HTTP function, the declaration has {', '.join(http)}",
            component="host", fix="route them in one function, or teach the host to route by path",
        )
    return HostSpec(
        functions_root=anvil.project_root() / "functions",
        api_function=http[0] if http else None,
        schedules=tuple(
            Schedule(name, max(schedule.local_floor_seconds, settings.host_tick_seconds),
                     wake_on_outbox=schedule.wake_on_outbox)
            for name, schedule in declared.scheduled().items()
        ),
        queue_triggers=tuple(
            QueueTrigger(source.queue, name, batch_size=source.batch_size)
            for name, source in declared.queue_sources().items()
        ),
        workers=settings.host_workers,
        timeouts={name: float(f.timeout_seconds) for name, f in declared.functions.items()},
        settings={
            name: settings_mod.load(settings_mod.environment(settings, name, f.settings), names=f.settings)
            for name, f in declared.functions.items()
        },
    )


class Host:
    """The host's threads and servers. ``start()`` returns once everything listens; ``stop()`` undoes it."""

    def __init__(self, settings: Settings, spec: HostSpec, *, port: int | None = None) -> None:
        if not settings.database_url:
            raise errors.ConfigError(
                "the host needs TRACE_DATABASE_URL (run `trace-lite up`, which starts Postgres first)",
                variable="TRACE_DATABASE_URL",
            )
        self.settings = settings
        self.spec = spec
        self._port = settings.api_port if port is None else port
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wakes: dict[str, threading.Event] = {}
        self._exit = contextlib.ExitStack()
        self.functions: dict[str, host_functions.Function] = {}
        self.workers: list[runner.Worker] = []
        self._server: host_http.Server | None = None
        self.pool: ConnectionPool | None = None
        self.driver: base.QueueDriver | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        url = self.settings.database_url or ""
        self.pool = pool_mod.get(url, max_size=max(self.settings.db_pool_max, 6 + 4 * self.spec.workers))
        self.driver = factory.driver_for(self.settings)
        self._exit.callback(getattr(self.driver, "close", lambda: None))
        self._exit.enter_context(deps.injected(deps.Deps(self.settings, self.pool, self.driver)))
        for name in self.spec.function_names:
            own = self.spec.settings.get(name)
            self.functions[name] = host_functions.load(
                self.spec.functions_root, name, timeout_seconds=self.spec.timeouts.get(name, 30.0),
                deps=deps.Deps(own, self.pool, self.driver) if own is not None else None,
            )
        for schedule in self.spec.schedules:
            self._wakes[schedule.function] = threading.Event()
            self._thread(self._schedule_loop, f"schedule-{schedule.function}", schedule)
        if any(s.wake_on_outbox for s in self.spec.schedules):
            outbox_listener = listener.Listener(
                url, OUTBOX_CHANNEL, lambda _: self._wake_outbox(), application_name="trace-lite-host-outbox"
            )
            outbox_listener.start()
            self._exit.callback(outbox_listener.close)
        for trigger in self.spec.queue_triggers:
            self._thread(self._queue_loop, f"sqs-{trigger.queue}", trigger)
        for n in range(self.spec.workers):
            worker = runner.Worker(
                direct.for_driver(self.pool, self.driver), self.driver, self.settings,
                worker_config.WorkerConfig(
                    queue=self.settings.task_queue, concurrency=self.settings.worker_concurrency,
                    lease_seconds=self.settings.lease_seconds,
                    worker_id=f"lite-host:{os.getpid()}:{n}",
                ),
            )
            self.workers.append(worker)
            self._thread(worker.run, f"worker-{n}")
        if self.spec.api_function:
            self._server = host_http.Server(self._port or 0)
            api = self.functions[self.spec.api_function]
            self._server.start(host_http.App(
                invoke=lambda event: host_events.http_response(api.invoke(event)), health=self.health,
                on_write=self._wake_outbox, region=self.settings.aws_region,
                domain=f"{procs.HOST}:{self._server.port}",
            ))

    def stop(self) -> None:
        """Stop serving, let workers finish (their grace), stop timers and pollers, release connections."""
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
        for worker in self.workers:
            worker.request_stop()
        for event in self._wakes.values():
            event.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._exit.close()

    @property
    def port(self) -> int | None:
        return self._server.port if self._server is not None else None

    @property
    def url(self) -> str | None:
        return f"http://{procs.HOST}:{self.port}" if self.port else None

    def wake(self, function: str) -> None:
        """Run a scheduled function now (coalesced with a run already pending)."""
        event = self._wakes.get(function)
        if event is not None:
            event.set()

    def health(self) -> dict[str, Any]:
        return {
            "ok": not self._stopping.is_set(),
            "functions": {
                name: {"invocations": f.invocations, "errors": f.errors} for name, f in self.functions.items()
            },
            "workers": [dict(w.stats) for w in self.workers],
        }

    # ------------------------------------------------------------ loops
    def _thread(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"host-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _wake_outbox(self) -> None:
        for schedule in self.spec.schedules:
            if schedule.wake_on_outbox:
                self.wake(schedule.function)

    def _schedule_loop(self, schedule: Schedule) -> None:
        function = self.functions[schedule.function]
        wake = self._wakes[schedule.function]
        rule = f"trace-lite-{schedule.function.replace('_', '-')}"
        while not self._stopping.is_set():
            wake.wait(timeout=schedule.every_seconds)
            wake.clear()
            if self._stopping.is_set():
                return
            try:
                function.invoke(host_events.scheduled_event(rule, region=self.settings.aws_region))
            except Exception:  # noqa: BLE001 - logged by invoke; the next tick tries again
                self._stopping.wait(min(1.0, schedule.every_seconds))

    def _queue_loop(self, trigger: QueueTrigger) -> None:
        function = self.functions[trigger.function]
        assert self.driver is not None
        while not self._stopping.is_set():
            try:
                messages = self.driver.receive(
                    trigger.queue, max_messages=trigger.batch_size, wait_seconds=1.0,
                    visibility_seconds=trigger.visibility_seconds,
                )
            except Exception as exc:  # noqa: BLE001 - the queue is down: wait and retry
                log.warning("host: receive from %s failed: %s", trigger.queue, exc)
                self._stopping.wait(1.0)
                continue
            if messages:
                self._deliver(function, messages)

    def _deliver(self, function: host_functions.Function, messages: list[base.Message]) -> None:
        assert self.driver is not None
        try:
            result = function.invoke(host_events.sqs_event(messages, region=self.settings.aws_region))
            failed = host_events.batch_failures(result, [m.message_id for m in messages])
        except Exception:  # noqa: BLE001 - an invocation error fails the whole batch, as in Lambda
            failed = None
        if failed is None:
            log.warning("host: %s failed its batch of %d; the messages return after their visibility",
                        function.name, len(messages))
            return
        done = [m for m in messages if m.message_id not in failed]
        if done:
            self.driver.ack(done)


# ---------------------------------------------------------------- foreground entry point
def export_environment(settings: Settings) -> None:
    """Give handlers the environment a Lambda would have (settings they read themselves, quiet Powertools)."""
    exported = {
        "TRACE_DATABASE_URL": settings.database_url,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
        "TRACE_RPC_URL": settings.rpc_url,
        "TRACE_HOME": str(settings.home),
        "AWS_DEFAULT_REGION": settings.aws_region,
    }
    for key, value in exported.items():
        if value:
            os.environ[key] = value
    # No X-Ray daemon here, and per-invocation INFO logs would flood host.log: off unless asked for.
    # Metrics stay on (EMF lines in host.log): POWERTOOLS_METRICS_DISABLED makes Powertools 3.x keep
    # every data point in memory instead of flushing it.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    settings_mod.get.cache_clear()


@contextlib.contextmanager
def running(settings: Settings, spec: HostSpec | None = None, *, port: int | None = None) -> Iterator[Host]:
    """A started host for the duration of the block (stopped after, also on errors)."""
    host = Host(settings, spec or default_spec(settings), port=port)
    host.start()
    try:
        yield host
    finally:
        host.stop()


def serve(settings: Settings, *, port: int | None = None, workers: int | None = None) -> None:
    """Run the host until SIGTERM or SIGINT (what `trace-lite host` does)."""
    export_environment(settings)
    spec = default_spec(settings)
    if workers is not None:
        spec = dataclasses.replace(spec, workers=workers)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with running(settings, spec, port=port) as host:
        print(f"host ready: api={host.url} workers={spec.workers} functions={','.join(host.functions)}", flush=True)
        while not done.wait(0.5):
            pass
        log.info("host stopping")
