"""The `status` section that names committed dataset versions the store can no longer serve."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from trace_core.cli import stack as stack_cli
from trace_core.datasets import errors as dataset_errors
from trace_core.settings import Settings

# Beyond this many, `status` says how many more (the JSON lists them all).
_SHOWN = 20


def register(app: typer.Typer) -> None:
    stack_cli.STATUS_SECTIONS.append(status_section)
    stack_cli.STATUS_JSON_SECTIONS.append(status_json)


def status_section(out: Console, settings: Settings, options: stack_cli.StatusOptions) -> None:
    from trace_core.lite import durability  # boto3: only `status` pays for it, not every command

    if options.job or not settings.database_url:
        return
    try:
        lost = durability.unreadable(settings)
    except dataset_errors.ObjectStoreError as exc:
        out.print(f"[red]dataset versions: the store could not be listed[/] ({exc.message})")
        return
    if not lost:
        return
    out.print(f"[red]{len(lost)} committed dataset version(s) cannot be read: their objects are missing[/]")
    for item in lost[:_SHOWN]:
        out.print(f"  {item.dataset_key} [{item.range_start}, {item.range_end}) {item.dataset_version}: "
                  f"{item.reason}", highlight=False)
    if len(lost) > _SHOWN:
        out.print(f"  ... and {len(lost) - _SHOWN} more (`trace-lite status --json` lists them all)")
    out.print("  fix: apply the job's spec again (`trace-lite apply -f <spec>`): chain sync re-extracts them")


def status_json(settings: Settings, options: stack_cli.StatusOptions) -> dict[str, Any]:
    from trace_core.lite import durability  # boto3: only `status` pays for it, not every command

    if not settings.database_url:
        return {}
    try:
        lost = durability.unreadable(settings)
    except dataset_errors.ObjectStoreError as exc:
        return {"unreadable_versions": None, "unreadable_versions_error": exc.message}
    return {"unreadable_versions": [
        {"dataset_version": u.dataset_version, "dataset_key": u.dataset_key, "range_start": u.range_start,
         "range_end": u.range_end, "reason": u.reason}
        for u in lost
    ]}
