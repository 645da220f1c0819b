"""`trace-lite up | down | status`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from trace_core import redact
from trace_core import settings as settings_mod
from trace_core.cli import context
from trace_core.lite import stack
from trace_core.settings import Settings

console = Console()


@dataclasses.dataclass(frozen=True)
class StatusOptions:
    job: str | None = None  # only this chain_sync job
    watch: bool = False  # refresh until done (on a terminal)


# Sections `status` prints after the components' health, in order. Each command
# module that has something to report (tasks, chain sync jobs) appends one. They
# run only while Postgres answers.
StatusSection = Callable[[Console, Settings, StatusOptions], None]
STATUS_SECTIONS: list[StatusSection] = []
# The same for `status --json`: each returns top-level keys to add to the document
# (chain sync: {"jobs": [...]}); "components" and "healthy" are the stack's own.
StatusJsonSection = Callable[[Settings, StatusOptions], dict[str, Any]]
STATUS_JSON_SECTIONS: list[StatusJsonSection] = []


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)


def _health_cell(component: stack.ComponentStatus) -> str:
    colour = {"healthy": "green", "degraded": "yellow", "down": "red"}[component.health.state]
    return f"[{colour}]{component.health}[/]"


def _health_table(results: dict[str, stack.ComponentStatus]) -> Table:
    table = Table(title="Trace Lite")
    for column in ("component", "health", "url", "pid", "managed"):
        table.add_column(column)
    for name, component in results.items():
        record = component.record
        table.add_row(
            name,
            _health_cell(component),
            redact.url(record.url),
            str(record.pid or "-"),
            "yes" if record.managed else "no (external)",
        )
    return table


def _fixes(results: dict[str, stack.ComponentStatus]) -> list[str]:
    """One line per dead component: what is down and how to bring it back."""
    lines = []
    for name, component in results.items():
        if component.health.state != "down":
            continue
        if component.record.managed:
            data = " on its data" if name == "postgres" else ""
            lines.append(f"{name} is down ({component.health.detail}): run `trace-lite up` to restart it{data}")
        else:
            variable = stack.URL_VARIABLES.get(name, "its URL")
            lines.append(f"{name} is down ({component.health.detail}): start that server or correct {variable}, "
                         "then run `trace-lite up`")
    return lines


def _database_answers(settings: Settings, results: dict[str, stack.ComponentStatus]) -> bool:
    if "postgres" in results:
        return results["postgres"].health.ok
    try:  # TRACE_DATABASE_URL with no stack recorded: ask it
        with psycopg.connect(settings.database_url or "", connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _json_document(results: dict[str, stack.ComponentStatus], healthy: bool) -> dict[str, Any]:
    return {
        "components": {
            name: {
                "url": redact.url(component.record.url),
                "managed": component.record.managed,
                "pid": component.record.pid,
                "health": component.health.state,
                "detail": component.health.detail,
            }
            for name, component in results.items()
        },
        "jobs": [],
        "healthy": healthy,
    }


def up() -> None:
    """Start the stack, or repair it: keep what is alive, restart what is dead (and what depends on it)."""
    # The environment as the user set it: the stack's own URLs are not "configured" ones.
    settings = settings_mod.get()
    stack.up(settings)
    console.print(_health_table(stack.status(settings)))


def down() -> None:
    """Stop exactly what `up` started."""
    stopped = stack.down(settings_mod.get())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


def status(
    job: str | None = typer.Option(None, "--job", help="Show only this chain_sync job's progress."),
    watch: bool = typer.Option(False, "--watch", help="Keep refreshing until the job completes (terminal only)."),
    as_json: bool = typer.Option(False, "--json", help="Print the state as JSON (components, jobs, healthy)."),
) -> None:
    """Health of each component, tasks, and chain sync progress; exit 1 unless all is healthy."""
    settings = context.settings()
    options = StatusOptions(job=job, watch=watch and not as_json)
    results = stack.status(settings)
    if not results and not settings.database_url:
        if as_json:
            print(json.dumps(_json_document({}, False), indent=2))
        else:
            console.print(f"Trace Lite is not up in {settings.home} (run `trace-lite up`)", markup=False)
        raise typer.Exit(1)
    database = _database_answers(settings, results)
    healthy = database and all(component.health.ok for component in results.values())
    if as_json:
        document = _json_document(results, healthy)
        if database:
            for json_section in STATUS_JSON_SECTIONS:
                document.update(json_section(settings, options))
        print(json.dumps(document, indent=2, default=str))
    else:
        if job is None:
            console.print(_health_table(results))
        for line in _fixes(results):
            console.print(line, markup=False, highlight=False)
        if database:
            for section in STATUS_SECTIONS:
                section(console, settings, options)
        elif "postgres" not in results:
            console.print("postgres: TRACE_DATABASE_URL does not answer", markup=False)
    if not healthy:
        raise typer.Exit(1)
