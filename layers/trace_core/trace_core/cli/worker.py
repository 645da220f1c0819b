"""`trace-lite worker` (run a worker in the foreground) and `trace-lite host` (the local Lambda host)."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from typing import Any

import typer

from trace_core import aws, redact
from trace_core.cli import context
from trace_core.db import pool
from trace_core.queue import factory
from trace_core.settings import Settings
from trace_core.worker import allocator, cryo_threads, direct, operators, runner
from trace_core.worker import config as worker_config


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(host)


class _RedactingFormatter(logging.Formatter):
    """Log lines with secrets in URLs masked (an RPC key in an error message, a password in a DSN)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact.text(super().format(record))


def _logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])


def worker(
    queue: str | None = typer.Option(None, help="Queue to take wake-ups from (default TRACE_TASK_QUEUE)."),
    concurrency: int | None = typer.Option(None, min=1, help="Operators run at once (TRACE_WORKER_CONCURRENCY)."),
    lease_seconds: int | None = typer.Option(None, min=1, help="Lease length (TRACE_LEASE_SECONDS)."),
    prefetch: int = typer.Option(96, min=0, help="Extra leases held while operators finish fast (0: none)."),
    on_term: str = typer.Option("finish", "--on-term", help="On SIGTERM: finish running tasks, or abandon them."),
    grace_seconds: float = typer.Option(20.0, help="How long `finish` waits before abandoning what still runs."),
    poll_seconds: float = typer.Option(5.0, help="Poll for due tasks this often when no wake-ups arrive."),
) -> None:
    """Run a worker in the foreground until SIGTERM/SIGINT (a second signal abandons at once)."""
    settings = context.settings()
    malloc, threads = _prepare_for_cryo(settings)
    _logging(settings)
    if on_term not in ("finish", "abandon"):
        raise typer.BadParameter(f"expected finish or abandon, got {on_term!r}", param_hint="--on-term")
    operators.load_modules(settings.operator_modules)
    config = worker_config.WorkerConfig(
        queue=queue or settings.task_queue,
        concurrency=concurrency or settings.worker_concurrency,
        lease_seconds=lease_seconds or settings.lease_seconds,
        prefetch=prefetch,
        on_stop=on_term,  # type: ignore[arg-type]
        grace_seconds=grace_seconds,
        poll_seconds=poll_seconds,
    )
    driver = factory.driver_for(settings)
    the_worker = runner.Worker(
        direct.for_driver(pool.get(context.database_url(), max_size=settings.db_pool_max), driver),
        driver, settings, config,
    )

    def stop(signum: int, _: Any) -> None:
        the_worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger(__name__).info(
        "worker %s ready: queue=%s operators=%s concurrency=%d lease=%ds malloc=%s cryo_threads=%d",
        config.worker_id, config.queue, ",".join(operators.names()), config.concurrency, config.lease_seconds,
        allocator.name_of(malloc), threads,
    )
    # A worker allocates many short-lived objects per task. With the default thresholds (a young
    # collection every 700 allocations, each also walking what startup left behind) the cyclic
    # GC took about a quarter of the worker's CPU (docs/decisions/0304): freeze what startup
    # made and collect young objects every 10,000 allocations.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        the_worker.run()
    finally:
        getattr(driver, "close", lambda: None)()
        pool.close_all()
    logging.getLogger(__name__).info("worker %s stopped: %s", config.worker_id, dict(the_worker.stats))


def _prepare_for_cryo(settings: Settings) -> tuple[str | None, int]:
    """Set up a process that runs Cryo: its allocator (may re-execute it first) and Cryo's runtime threads.

    Returns the allocator library in use (None: glibc's malloc) and the runtime's thread count.
    """
    try:
        malloc = allocator.apply(settings.worker_allocator)
    except allocator.AllocatorError as exc:
        raise typer.BadParameter(str(exc), param_hint="TRACE_WORKER_ALLOCATOR") from exc
    return malloc, cryo_threads.apply(settings.worker_cryo_threads)


def host(
    port: int | None = typer.Option(None, help="API port on 127.0.0.1 (default TRACE_API_PORT, 0 = free)."),
    workers: int | None = typer.Option(None, min=0, help="Worker loops to run (default TRACE_HOST_WORKERS)."),
) -> None:
    """Run the local Lambda host in the foreground: dispatcher API, drainer and reaper timers, workers."""
    from trace_core.lite import host as host_mod

    settings = context.settings()
    aws.require_endpoint(settings)  # its planner and sink write to S3: never to public AWS
    if (settings.host_workers if workers is None else workers) > 0:
        _prepare_for_cryo(settings)  # its worker loops run Cryo in this process
    _logging(settings)
    operators.load_modules(settings.operator_modules)
    try:
        host_mod.serve(settings, port=port, workers=workers)
    finally:
        pool.close_all()  # an open pool makes interpreter exit wait for its workers
