"""`trace-lite apply`, `trace-lite chain-sync pause|resume`, `trace-lite datasets`, and the sync status section."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.live import Live
from rich.table import Table

from trace_core import redact
from trace_core.cli import context
from trace_core.cli import stack as stack_cli
from trace_core.settings import Settings

# trace_core.chainsync (httpx, yaml) and trace_core.lite.durability (boto3) are imported by the commands that
# use them: registering them (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).

console = Console()
chain_sync_app = typer.Typer(no_args_is_help=True, help="Pause and resume chain_sync jobs.")


def register(app: typer.Typer) -> None:
    app.command()(apply)
    app.command()(datasets)
    app.add_typer(chain_sync_app, name="chain-sync")
    stack_cli.STATUS_SECTIONS.append(status_section)
    stack_cli.STATUS_JSON_SECTIONS.append(status_json)


def _connect(settings: Settings | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(context.database_url() if settings is None else settings.database_url or "",
                           row_factory=dict_row)


def apply(
    file: Annotated[Path, typer.Option("--file", "-f", exists=True, dir_okay=False, help="Job spec (YAML).")],
) -> None:
    """Validate a chain_sync spec and upsert its job; re-applying the same file changes nothing.

    Every RPC URL of the pool must answer eth_chainId with the spec's chain_id.
    """
    from trace_core.chainsync import chain_reader, jobs
    from trace_core.chainsync import spec as spec_mod
    from trace_core.lite import durability

    settings = context.settings()
    environ = dict(os.environ)
    if settings.rpc_url:
        environ.setdefault("TRACE_RPC_URL", settings.rpc_url)
    spec = spec_mod.parse(file.read_text(), environ=environ)
    chain_reader.check_pool(spec.rpc.urls, spec.chain_id)
    with _connect() as conn:
        result = jobs.apply(conn, spec, chain_reader.RpcChainReader(spec.rpc.urls),
                            store=durability.datasets_store(settings))
    pool = ", ".join(redact.url(u) for u in spec.rpc.urls)
    lost = f"; re-extracting {result.recovered} lost dataset version(s)" if result.recovered else ""
    console.print(f"job {spec.name}: {result.outcome} ({result.scheduled} range tasks scheduled; chain "
                  f"{spec.chain_id} at {pool}{lost})", highlight=False)


@chain_sync_app.command()
def pause(name: str) -> None:
    """Stop scheduling new ranges for a job (running ranges finish)."""
    from trace_core.chainsync import jobs

    with _connect() as conn:
        changed = jobs.set_paused(conn, name, True)
    console.print(f"job {name}: {'paused' if changed else 'already paused or completed'}")


@chain_sync_app.command()
def resume(name: str) -> None:
    """Resume a paused job."""
    from trace_core.chainsync import jobs

    with _connect() as conn:
        changed = jobs.set_paused(conn, name, False)
    console.print(f"job {name}: {'resumed' if changed else 'already active or completed'}")


def datasets(job: str | None = typer.Option(None, "--job", help="Only this job's datasets.")) -> None:
    """List the committed dataset versions queries can see."""
    from trace_core.chainsync import jobs

    with _connect() as conn:
        job_id = jobs.find(conn, job)["job_id"] if job else None
        rows = jobs.visible_versions(conn, job_id)
    table = Table(title="Committed dataset versions")
    for column in ("dataset", "range", "version", "manifest"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["dataset_key"], f"[{row['range_start']}, {row['range_end']})", row["dataset_version"],
                      row["manifest_key"])
    console.print(table if rows else "no committed dataset versions yet")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _progress_table(conn: psycopg.Connection[Any], name: str) -> tuple[Table, bool]:
    from trace_core.chainsync import jobs

    job, streams = jobs.progress(conn, name)
    table = Table(title=f"chain_sync {name}: {job['status']}")
    for column in ("dataset", "cursor", "target", "done", "queued", "running", "committed", "failed",
                   "blocks/s", "ETA", "last error"):
        table.add_column(column)
    for s in streams:
        span = (s.target - s.from_block) if s.target is not None else None
        pct = f"{100 * s.done_blocks / span:.0f}%" if span else "-"
        error = redact.text(s.last_error or "")
        if s.broken_at is not None:
            error = f"[red]BROKEN at {s.broken_at}[/]: {error}"
        table.add_row(s.dataset_key, str(s.cursor), str(s.target) if s.target is not None else "head", pct,
                      str(s.queued), str(s.running), str(s.committed), str(s.failed),
                      f"{s.blocks_per_second:.0f}", _eta(s.eta_seconds), error[:80])
    return table, job["status"] in ("completed", "failed")


def _plain_lines(conn: psycopg.Connection[Any], name: str) -> None:
    from trace_core.chainsync import jobs

    job, streams = jobs.progress(conn, name)
    print(f"job {name}: {job['status']}")
    for s in streams:
        broken = f" broken_at={s.broken_at}" if s.broken_at is not None else ""
        print(f"  {s.dataset_key}: cursor={s.cursor} target={s.target} queued={s.queued} running={s.running} "
              f"committed={s.committed} failed={s.failed} blocks_per_s={s.blocks_per_second:.0f} "
              f"eta={_eta(s.eta_seconds)}{broken} last_error={redact.text(s.last_error or '-')}")


def status_json(settings: Settings, options: stack_cli.StatusOptions) -> dict[str, Any]:
    """`status --json`'s ``jobs``: each chain_sync job's status and its streams' progress."""
    from trace_core.chainsync import jobs

    with _connect(settings) as conn:
        names = [options.job] if options.job else [j["name"] for j in jobs.list_jobs(conn)]
        found = [jobs.progress(conn, name) for name in names]
    return {"jobs": [{"name": name, "status": job["status"],
                      "streams": [{**dataclasses.asdict(s), "last_error": redact.text(s.last_error or "") or None}
                                  for s in streams]}
                     for name, (job, streams) in zip(names, found)]}


def status_section(out: Console, settings: Settings, options: stack_cli.StatusOptions) -> None:
    from trace_core.chainsync import jobs

    if not settings.database_url:
        return
    with _connect(settings) as conn:
        names = [options.job] if options.job else [j["name"] for j in jobs.list_jobs(conn)]
        for name in names:
            if options.watch and sys.stdout.isatty():
                with Live(_progress_table(conn, name)[0], console=out, refresh_per_second=2) as live:
                    while True:
                        table, finished = _progress_table(conn, name)
                        live.update(table)
                        if finished:
                            break
                        time.sleep(0.5)
            elif out.is_terminal:
                out.print(_progress_table(conn, name)[0])
            else:
                _plain_lines(conn, name)
