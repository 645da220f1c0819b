"""`trace-lite analytics list | run NAME --param k=v ... [--plot FILE.png] [--report DIR] [--format json]`.

`run` asks the running Query Service (`trace-lite up`) with a Lite user token
granting the analytic's relation; see docs/specs/analytics.md.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trace_core.cli import context

if TYPE_CHECKING:
    from trace_core.analytics import results

# trace_core.analytics (pyarrow, sqlglot, the Query Service's client) is imported by the commands that use it:
# registering them (and `trace-lite --help`) must not pay for it (tests/unit/test_cli_startup.py).

# Piped output (files, CI logs) gets room for 78-digit amounts; a terminal keeps its own width.
console = Console(width=None if sys.stdout.isatty() else 200)
app = typer.Typer(no_args_is_help=True, help="Stored analytics: total supply, top holders, staking concentration.")
# Rows of each table printed to the terminal; --format json prints all of them.
DISPLAY_ROWS = 25


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="analytics")


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """``["n=5", "token=0x..."]`` -> ``{"n": "5", "token": "0x..."}``; ParameterError on a pair without ``=``."""
    from trace_core.analytics import errors

    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise errors.ParameterError(
                f"--param {pair!r}: expected NAME=VALUE, e.g. --param n=5", field="param", expected="NAME=VALUE",
            )
        if name.strip() in out:
            raise errors.ParameterError(f"--param {name.strip()} is given twice", field=name.strip(),
                                        expected="each parameter once")
        out[name.strip()] = value.strip()
    return out


@app.command("list")
def list_analytics() -> None:
    """Show every stored analytic and its parameters."""
    from trace_core.analytics import catalog

    for analytic in catalog.ANALYTICS:
        console.print(f"[bold]{analytic.name}[/bold]: {analytic.description}")
        console.print(f"  reads: {analytic.relation}")
        for spec in analytic.parameters():
            console.print(f"  --param {spec.line()}")
        console.print()


def _shown(column: results.Column, value: Any) -> str:
    from trace_core.analytics import metrics, results

    if value is None:
        return ""
    if column.kind == "ratio":
        # Six places read well in a terminal; --format json has 18, and the Fraction is exact.
        return metrics.decimal_text(Fraction(value), places=6) or ""
    return str(results.json_value(column.kind, value))


def _render(table: results.Table) -> Table:
    shown = Table(title=table.title, caption=(
        f"{len(table.rows)} rows, first {DISPLAY_ROWS} shown" if len(table.rows) > DISPLAY_ROWS else None))
    for column in table.columns:
        shown.add_column(column.name, justify="right" if column.kind in ("amount", "ratio", "integer", "block")
                         else "left", overflow="fold")
    for row in table.rows[:DISPLAY_ROWS]:
        shown.add_row(*(_shown(c, v) for c, v in zip(table.columns, row)))
    return shown


def _render_summary(summary: results.Table) -> Table:
    """The one summary row, as name / value / meaning lines."""
    shown = Table(title=summary.title)
    for name in ("name", "value", "meaning"):
        shown.add_column(name, justify="right" if name == "value" else "left", overflow="fold")
    for column, value in zip(summary.columns, summary.rows[0] if summary.rows else ()):
        shown.add_row(column.name, _shown(column, value), column.description)
    return shown


def show(result: results.AnalyticsResult, *, out: Console | None = None) -> None:
    """Print a result's title, summary and tables to the terminal."""
    out = out or console
    out.print(f"[bold]{result.title}[/bold]: blocks [{result.from_block}, {result.to_block})")
    if result.summary is not None:
        out.print(_render_summary(result.summary))
    for table in result.tables.values():
        out.print(_render(table))


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="The analytic (see `trace-lite analytics list`).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE; repeat for each.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the result into this .png file.")] = None,
    report_dir: Annotated[Path | None, typer.Option("--report", help="Also write an HTML report here.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Dataset namespace, when several chain syncs hold the analytic's dataset.")] = None,
) -> None:
    """Run one stored analytic over the synced data."""
    from trace_core.analytics import errors
    from trace_core.lite import analytics as lite_analytics

    if format not in ("table", "json"):
        raise errors.ParameterError(f"--format {format!r}: expected table or json", field="format",
                                    expected="table or json")
    parsed = parse_params(param)
    result = lite_analytics.run(name, parsed, context.settings(), namespace=namespace)
    # matplotlib costs a quarter second to import: only commands that draw pay for it.
    from trace_core.analytics import plots, report
    if plot is not None:
        plots.plot(result, plot)
    if report_dir is not None:
        report.write_report([result], report_dir)
    if format == "json":
        print(json.dumps(result.to_json()))
        return
    show(result)
    for path, what in ((plot, "chart"), (report_dir, "report")):
        if path is not None:
            console.print(f"{what}: {path}")
