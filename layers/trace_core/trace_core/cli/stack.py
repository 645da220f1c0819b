"""`trace-lite up | down | status`."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from trace_core.cli import context
from trace_core.lite import stack

console = Console()


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


def status() -> None:
    """Health of each component of the running stack."""
    results = stack.status(context.settings())
    if not results:
        console.print("Trace Lite is not up (run `trace-lite up`)")
        raise typer.Exit(1)
    console.print(_health_table())
    if not all(healthy for _, healthy in results.values()):
        raise typer.Exit(1)
