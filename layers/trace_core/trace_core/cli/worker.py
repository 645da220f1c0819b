"""`trace-lite worker` (run a worker in the foreground) and `trace-lite host` (the local Lambda host).

`trace-lite worker` is a thin shell over :func:`trace_core.worker.serve.serve`, the function behind the
production entry point (``python -m trace_core.worker``): it adds the Lite stack's endpoints (from the
state file), the command line's options and text logs.
"""

from __future__ import annotations

import typer

from trace_core.cli import context

# The worker's modules (boto3, Cryo, the chain client) are imported by the commands that run it: registering
# them (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(host)


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
    from trace_core.worker import config as worker_config
    from trace_core.worker import logs, serve

    if on_term not in ("finish", "abandon"):
        raise typer.BadParameter(f"expected finish or abandon, got {on_term!r}", param_hint="--on-term")
    settings = context.settings()
    logs.configure(settings.log_level, structured=False)
    config = worker_config.WorkerConfig(
        queue=queue or settings.task_queue,
        concurrency=concurrency or settings.worker_concurrency,
        lease_seconds=lease_seconds or settings.lease_seconds,
        prefetch=prefetch,
        on_stop=on_term,  # type: ignore[arg-type]
        grace_seconds=grace_seconds,
        poll_seconds=poll_seconds,
    )
    serve.serve(settings, config, context.database_url())


def host(
    port: int | None = typer.Option(None, help="API port on 127.0.0.1 (default TRACE_API_PORT, 0 = free)."),
    workers: int | None = typer.Option(None, min=0, help="Worker loops to run (default TRACE_HOST_WORKERS)."),
) -> None:
    """Run the local Lambda host in the foreground: dispatcher API, drainer and reaper timers, workers."""
    from trace_core import aws
    from trace_core.db import pool
    from trace_core.lite import host as host_mod
    from trace_core.worker import logs, serve

    settings = context.settings()
    aws.require_endpoint(settings)  # its planner and sink write to S3: never to public AWS
    if (settings.host_workers if workers is None else workers) > 0:
        serve.prepare_for_cryo(settings)  # its worker loops run Cryo in this process
    logs.configure(settings.log_level, structured=False)
    try:
        host_mod.serve(settings, port=port, workers=workers)
    finally:
        pool.close_all()  # an open pool makes interpreter exit wait for its workers
