"""`trace-lite up | down | status`."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from trace_core.cli import context
from trace_core.lite import stack
from trace_core.settings import Settings

console = Console()

# Sections `status` prints after the components' health, in order. Each command
# module that has something to report (tasks, chain sync jobs) appends one.
@dataclasses.dataclass(frozen=True)
class StatusOptions:
    job: str | None = None  # only this chain_sync job
    watch: bool = False  # refresh until done (on a terminal)


StatusSection = Callable[[Console, Settings, StatusOptions], None]
STATUS_SECTIONS: list[StatusSection] = []


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)


def _health_table() -> Table:
    table = Table(title="Trace Lite")
    for column in ("component", "health", "url", "pid", "managed"):
        table.add_column(column)
    for name, (record, healthy) in stack.status(context.settings()).items():
        table.add_row(
            name,
            "[green]healthy[/]" if healthy else "[red]down[/]",
            record.url,
            str(record.pid or "-"),
            "yes" if record.managed else "no (external)",
        )
    return table


def up() -> None:
    """Start Postgres, the AWS endpoint and the local chain on 127.0.0.1 (harmless if already up)."""
    stack.up(context.settings())
    console.print(_health_table())


def down() -> None:
    """Stop exactly what `up` started."""
    stopped = stack.down(context.settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def status(
    job: Optional[str] = typer.Option(None, "--job", help="Show only this chain_sync job's progress."),
    watch: bool = typer.Option(False, "--watch", help="Keep refreshing until the job completes (terminal only)."),
) -> None:
    """Health of each component, tasks, and chain sync progress."""
    settings = context.settings()
    results = stack.status(settings)
    if not results and not settings.database_url:
        console.print("Trace Lite is not up (run `trace-lite up`)")
        raise typer.Exit(1)
    if job is None:
        console.print(_health_table())
    for section in STATUS_SECTIONS:
        section(console, settings, StatusOptions(job=job, watch=watch))
    if results and not all(healthy for _, healthy in results.values()):
        raise typer.Exit(1)
