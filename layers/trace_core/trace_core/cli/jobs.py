"""`trace-lite jobs list | delete`: the chain_sync jobs applied so far, and removing one (docs/decisions/1308)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from trace_core import errors
from trace_core.cli import context

if TYPE_CHECKING:
    from trace_core.chainsync import deletion

# trace_core.chainsync (httpx, yaml) and trace_core.aws (boto3) are imported by the commands that use them:
# registering them (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).

console = Console()
jobs_app = typer.Typer(no_args_is_help=True, help="List and delete chain_sync jobs.")


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")


def _connect() -> psycopg.Connection[Any]:
    return psycopg.connect(context.database_url(), row_factory=dict_row)


@jobs_app.command("list")
def list_() -> None:
    """Every chain_sync job: its status, chain and datasets."""
    from trace_core.chainsync import jobs
    from trace_core.chainsync import spec as spec_mod

    with _connect() as conn:
        found = jobs.list_jobs(conn)
    if not found:
        console.print("no chain_sync jobs (apply one with `trace-lite apply --file job.yaml`)")
        return
    table = Table(title="chain_sync jobs")
    for column in ("name", "status", "chain", "datasets", "updated"):
        table.add_column(column)
    for job in found:
        spec = spec_mod.ChainSyncSpec.model_validate(job["spec"])
        table.add_row(job["name"], job["status"], str(spec.chain_id), ", ".join(map(spec.dataset_key, spec.datasets)),
                      job["updated_at"].strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


def statement(plan: deletion.Plan, *, drop_data: bool) -> str:
    """What deleting the job does, in the words the user confirms."""
    tasks = sum(plan.tasks.values())
    keys = ", ".join(plan.dataset_keys) or "none"
    lines = [(f"Deleting chain_sync job {plan.name} ({plan.status}) removes its cursors, its range ledger and its "
              f"{tasks} task(s) with their attempts.")]
    committed, superseded = len(plan.committed), len(plan.versions) - len(plan.committed)
    if drop_data:
        lines.append(f"--drop-data: its {committed} committed and {superseded} superseded dataset version(s) "
                     f"({keys}) are DELETED from the registry and storage. This cannot be undone.")
    else:
        lines.append(f"Its {committed} committed dataset version(s) ({keys}) are KEPT in the registry and storage, "
                     "but queries stop seeing them until a job with the same chain_id and namespace is applied "
                     "again (it re-uses them). Add --drop-data to delete them too.")
    return "\n".join(lines)


def _confirmed(name: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise errors.TraceError(
            f"refusing to delete job {name} without confirmation: there is no terminal to ask on",
            fix=f"read what it does with `trace-lite jobs delete {name}` on a terminal, or pass --yes")
    return typer.confirm(f"Delete job {name}?", default=False)


@jobs_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The job's name (see `trace-lite jobs list`)."),
    drop_data: bool = typer.Option(False, "--drop-data", help="Also delete its dataset versions and their files."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (for scripts)."),
) -> None:
    """Delete a job that has nothing in flight; its dataset versions are kept unless --drop-data."""
    from trace_core.chainsync import deletion

    with _connect() as conn:
        plan = deletion.plan(conn, name)
        deletion.check_deletable(plan)
        console.print(statement(plan, drop_data=drop_data))
        if not _confirmed(name, yes):
            console.print("cancelled: nothing deleted")
            raise typer.Exit(1)
        result = deletion.delete(conn, name, drop_data=drop_data)
    console.print(f"job {name} deleted ({sum(result.plan.tasks.values())} task(s), "
                  f"{len(result.plan.dataset_keys)} cursor(s) removed)")
    if not drop_data:
        console.print(f"kept {len(result.plan.committed)} committed dataset version(s)")
        return
    settings = context.settings()
    deleted, failed = 0, list[str]()
    if result.prefixes:
        from trace_core import aws  # boto3: only a --drop-data with objects to remove pays for it
        from trace_core.datasets import objectstore

        store = objectstore.S3ObjectStore(aws.s3_client(settings), settings.datasets_bucket)
        deleted, failed = deletion.drop_objects(store, result.prefixes)
    console.print(f"dropped {len(result.plan.versions)} dataset version(s) and {deleted} object(s)"
                  + (f"; datasets removed: {', '.join(result.datasets_removed)}" if result.datasets_removed else ""))
    if failed:
        raise errors.TraceError(
            f"{len(failed)} version prefix(es) could not be emptied (no registry row points at them any more): "
            + ", ".join(f"s3://{settings.datasets_bucket}/{p}" for p in failed),
            fix="check the S3 endpoint, then delete those prefixes by hand")
