"""`trace-lite show-version VERSION [--verify]` and `trace-lite clean-staging [--older-than-hours N]`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console

from trace_core.cli import context

if TYPE_CHECKING:
    from trace_core.datasets import objectstore

# trace_core.aws (boto3) and trace_core.datasets.commit (pyarrow) are imported by the commands that use them:
# registering them (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).

console = Console()


def register(app: typer.Typer) -> None:
    app.command("show-version")(show_version)
    app.command("clean-staging")(clean_staging)


def _store() -> objectstore.S3ObjectStore:
    from trace_core import aws
    from trace_core.datasets import objectstore

    settings = context.settings()
    return objectstore.S3ObjectStore(aws.s3_client(settings), settings.datasets_bucket)


def show_version(
    dataset_version: str = typer.Argument(..., help="The 32-hex dataset version id."),
    verify: bool = typer.Option(False, "--verify", help="Check every object's size and sha256 against the manifest."),
) -> None:
    """A committed dataset version: its registry row, manifest, and (with --verify) whether S3 matches."""
    from trace_core.datasets import commit

    store = _store()
    with psycopg.connect(context.database_url(), row_factory=dict_row) as conn:
        version, manifest = commit.read_manifest(conn, store, dataset_version)
    console.print(f"[bold]{version.dataset_key}[/] [{version.range_start}, {version.range_end}) "
                  f"version {version.dataset_version}")
    console.print(f"  prefix   s3://{store.bucket}/{version.storage_prefix}")
    console.print(f"  rows     {version.row_count}   bytes {version.bytes}   files {len(manifest.files)}")
    console.print(f"  links    parent {version.first_parent_hash}  last {version.last_block_hash}")
    console.print(f"  by       task {version.created_by_task} attempt {version.created_by_attempt} "
                  f"at {version.committed_at}")
    if verify:
        problems = commit.verify_objects(store, version, manifest)
        for problem in problems:
            console.print(f"  [red]MISMATCH[/] {problem}")
        if problems:
            raise typer.Exit(1)
        console.print(f"  [green]verified[/] {len(manifest.files)} objects match the manifest")


def clean_staging(
    older_than_hours: float = typer.Option(24.0, min=0, help="Only prefixes untouched for this long."),
) -> None:
    """Delete staging prefixes of finished or unknown attempts (a live attempt's are never touched)."""
    from trace_core.datasets import cleanup

    store = _store()
    with psycopg.connect(context.database_url(), row_factory=dict_row, autocommit=True) as conn:
        report = cleanup.sweep(conn, store, older_than=dt.timedelta(hours=older_than_hours))
    for prefix in report.deleted:
        console.print(f"deleted {prefix}")
    console.print(f"{len(report.deleted)} prefixes ({report.objects_deleted} objects) deleted, "
                  f"{len(report.kept)} kept")
