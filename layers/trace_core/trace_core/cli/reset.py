"""`trace-lite reset --yes`: stop the stack and delete its data, deliberately."""

from __future__ import annotations

import typer
from rich.console import Console

from trace_core import settings as settings_mod
from trace_core.lite import reset as reset_mod

console = Console()


def register(app: typer.Typer) -> None:
    app.command()(reset)


def reset(yes: bool = typer.Option(False, "--yes", help="Confirm: delete the Lite stack's data.")) -> None:
    """Stop the stack and delete everything it keeps under TRACE_HOME (Postgres, S3, the chain, logs)."""
    settings = settings_mod.get()  # as the user set it: a TRACE_DATABASE_URL is theirs, never touched
    if not yes:
        typer.echo(f"reset deletes every dataset, job and block of the stack in {settings.home}; "
                   "run `trace-lite reset --yes` to confirm", err=True)
        raise typer.Exit(1)
    removed = reset_mod.reset(settings)
    console.print(f"reset {settings.home}: deleted {', '.join(p.name for p in removed) or 'nothing (already empty)'}",
                  highlight=False)
    if settings.database_url:
        console.print("the database at TRACE_DATABASE_URL was not touched: its registry still lists the deleted "
                      "versions (`trace-lite status` names them)", highlight=False)
