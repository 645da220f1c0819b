"""`trace-lite sink publish | status | replay`: buffered dataset batches (docs/specs/sink.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from trace_core.cli import context
from trace_core.sink import errors, service, store

console = Console()
sink_app = typer.Typer(no_args_is_help=True, help="Publish, inspect and replay buffered dataset batches.")


def register(app: typer.Typer) -> None:
    app.add_typer(sink_app, name="sink")


def _records(path: Path) -> list[Any]:
    """JSON Lines (one record per line) or one JSON array."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--file") from exc
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except ValueError as exc:
            raise typer.BadParameter(f"{path}: not JSON ({exc})", param_hint="--file") from exc
        return list(records)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise typer.BadParameter(f"{path}:{number}: not JSON ({exc}); expected one JSON object per line",
                                     param_hint="--file") from exc
    return records


@sink_app.command("publish")
def publish(
    sink: Annotated[str, typer.Option(help="Sink name, e.g. alert_events.")],
    file: Annotated[Path, typer.Option(help="Records as JSON Lines or one JSON array.")],
    org: Annotated[UUID | None, typer.Option(help="The org that owns the rows (an existing org id).")] = None,
) -> None:
    """Validate and stage a batch; the host's outbox drainer and sink write it."""
    records = _records(file)
    try:
        with psycopg.connect(context.database_url()) as conn:
            batch_id = service.publish(conn, sink, records, org_id=org)
    except errors.InvalidBatchError as exc:
        for problem in exc.problems:
            console.print(f"[red]{problem['message']}[/red]; expected {problem['expected']}")
        raise typer.Exit(2) from exc
    console.print(f"batch {batch_id}: {sink}, {len(records)} records staged")


@sink_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Batches by sink and status, and the newest rejected ones with the reason."""
    with psycopg.connect(context.database_url()) as conn:
        counts, rejected = store.summary(conn)
    if as_json:
        print(json.dumps({"batches": counts, "rejected": rejected}, default=str))
        return
    table = Table("sink", "status", "batches", "records", "oldest")
    for row in counts:
        table.add_row(row["sink"], row["status"], str(row["batches"]), str(row["records"]), str(row["oldest"]))
    console.print(table)
    for row in rejected:
        console.print(f"rejected {row['batch_id']} ({row['sink']}, {row['rejections']}x): {row['last_error']}")


@sink_app.command("replay")
def replay(
    batch_ids: Annotated[list[UUID], typer.Argument(help="Batches to send again (applied ones are skipped).")],
) -> None:
    """Send new wake-ups for staged batches, e.g. after repairing a rejected one."""
    with psycopg.connect(context.database_url()) as conn:
        requeued = service.requeue(conn, batch_ids)
    skipped = sorted(set(batch_ids) - set(requeued), key=str)
    console.print(f"requeued {len(requeued)} batch(es)" + (f"; skipped (applied or unknown): "
                                                            f"{', '.join(map(str, skipped))}" if skipped else ""))
