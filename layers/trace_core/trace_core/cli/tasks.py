"""`trace-lite task create | list | get`, and the tasks section of `trace-lite status`."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from trace_core import redact
from trace_core.cli import context
from trace_core.cli import stack as stack_cli
from trace_core.db import queries as named_queries
from trace_core.dispatcher import models, tasks
from trace_core.settings import Settings

console = Console()
task_app = typer.Typer(no_args_is_help=True, help="Create and inspect dispatcher tasks.")
STATUSES = ("queued", "running", "completed", "failed", "dead")


def register(app: typer.Typer) -> None:
    app.add_typer(task_app, name="task")
    stack_cli.STATUS_SECTIONS.append(status_section)


def _connect(settings: Settings | None = None) -> psycopg.Connection[Any]:
    url = context.database_url() if settings is None else settings.database_url or ""
    return psycopg.connect(url, row_factory=dict_row)


def _payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc.msg} at position {exc.pos}); expected a JSON object",
                                 param_hint="--payload") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter(f"got a JSON {type(value).__name__}; expected a JSON object",
                                 param_hint="--payload")
    return value


def _task_dict(task: models.Task) -> dict[str, Any]:
    """The task as shown: URLs in its payload (a sync's RPC pool), outputs and error redacted."""
    return json.loads(redact.text(json.dumps(task.model_dump(mode="json"))))  # type: ignore[no-any-return]


@task_app.command("create")
def create(
    operator: str = typer.Option(..., help="Operator to run, e.g. noop."),
    payload: str = typer.Option("{}", help="Operator input as a JSON object."),
    idempotency_key: str | None = typer.Option(None, help="Repeat-safe key: the same key returns the same task."),
    max_attempts: int = typer.Option(3, help="Attempts before the task is dead."),
    queue: str | None = typer.Option(None, help="Queue for its wake-ups (default TRACE_TASK_QUEUE)."),
    as_json: bool = typer.Option(False, "--json", help="Print the task as JSON."),
) -> None:
    """Create a task; its wake-up is published by the outbox drainer of the running host."""
    settings = context.settings()
    request = models.parse(models.CreateTask, {
        "operator": operator, "payload": _payload(payload), "idempotency_key": idempotency_key,
        "max_attempts": max_attempts, "queue": queue or settings.task_queue,
    })
    with _connect() as conn:
        task = tasks.create(conn, request)
    if as_json:
        print(json.dumps(_task_dict(task)))
    else:
        console.print(f"task {task.task_id}: {task.operator} {task.status}")


@task_app.command("list")
def list_(
    status: str | None = typer.Option(None, help="Only tasks in this status: " + ", ".join(STATUSES)),
    limit: int = typer.Option(20, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List tasks, newest first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"got {status!r}; expected one of {', '.join(STATUSES)}", param_hint="--status")
    with _connect() as conn:
        found = tasks.list_tasks(conn, status=status, limit=limit)  # type: ignore[arg-type]
    if as_json:
        for task in found:
            print(json.dumps(_task_dict(task)))
        return
    table = Table(title="Tasks")
    for column in ("task_id", "operator", "status", "attempt", "updated", "last error"):
        table.add_column(column)
    for task in found:
        table.add_row(str(task.task_id), task.operator, task.status, f"{task.attempt}/{task.max_attempts}",
                      task.updated_at.strftime("%H:%M:%S"), redact.text(task.last_error or "")[:60])
    console.print(table if found else "no tasks")


@task_app.command("get")
def get(
    task_id: str = typer.Argument(..., help="The task's id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one task and its attempts."""
    try:
        parsed = UUID(task_id)
    except ValueError as exc:
        raise typer.BadParameter(f"got {task_id!r}; expected a UUID", param_hint="TASK_ID") from exc
    with _connect() as conn:
        task = tasks.get(conn, parsed)
        tried = tasks.attempts(conn, parsed)
    if as_json:
        print(redact.text(json.dumps({**_task_dict(task), "attempts": tried}, default=str)))
        return
    shown = _task_dict(task)
    console.print(f"task {task.task_id}: {task.operator} [bold]{task.status}[/] attempt {task.attempt}/"
                  f"{task.max_attempts}")
    console.print(f"  payload: {json.dumps(shown['payload'])}", markup=False)
    if task.outputs is not None:
        console.print(f"  outputs: {json.dumps(shown['outputs'])}", markup=False)
    if task.last_error:
        console.print(f"  last error: {shown['last_error']}", markup=False)
    for attempt in tried:
        console.print(f"  attempt {attempt['attempt']} by {attempt['worker_id']}: {attempt['outcome'] or 'running'}"
                      + (f" ({redact.text(attempt['error'])})" if attempt["error"] else ""), markup=False)


def summary(settings: Settings) -> dict[str, int]:
    """Task counts by status (every status present, zeros included) and pending wake-ups."""
    with _connect(settings) as conn:
        queries = named_queries.load("trace_core.cli", "tasks.sql")
        counts = {row["status"]: row["n"] for row in conn.execute(queries["counts_by_status"]).fetchall()}
        pending = conn.execute(queries["pending_wakeups"]).fetchone()
    result = {status: int(counts.get(status, 0)) for status in STATUSES}
    result["pending_wakeups"] = int(pending["n"]) if pending else 0
    return result


def status_section(out: Console, settings: Settings, options: stack_cli.StatusOptions) -> None:
    if options.job or not settings.database_url:
        return
    try:
        counts = summary(settings)
    except psycopg.Error as exc:
        out.print(f"tasks: unavailable ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc})")
        return
    table = Table(title="Tasks")
    for column in (*STATUSES, "pending wake-ups"):
        table.add_column(column)
    table.add_row(*(str(counts[s]) for s in STATUSES), str(counts["pending_wakeups"]))
    out.print(table)
