"""Entry point of `trace-lite`. Each command module registers its commands on the app."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Sequence

import typer

from trace_core.cli import analytics as analytics_cli
from trace_core.cli import (
    availability,
    bundle,
    chain,
    chainsync,
    datasets,
    demo,
    failure,
    jobs,
    logs,
    reset,
    stack,
    tasks,
    worker,
)
from trace_core.cli import query as query_cli
from trace_core.cli import sink as sink_cli
from trace_core.worker import process_exit

PROG = "trace-lite"
DISTRIBUTION = "trace-platform"

# Typer's pretty tracebacks show local variables (settings, URLs with keys): never for our users.
app = typer.Typer(no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  help="Trace Lite: the whole platform on one machine.")

for module in (stack, chainsync, jobs, tasks, worker, chain, query_cli, datasets, analytics_cli, demo, sink_cli,
               logs, reset, availability, bundle):
    module.register(app)


def version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed; run `make install`)"


def _print_version(value: bool) -> None:
    if value:
        print(f"{PROG} {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                      help="Print the version and exit."),
) -> None:
    pass


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``trace-lite`` with ``argv`` (default: the process's arguments); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name=PROG, standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except BaseException as exc:  # every error ends as words and an exit code
        if isinstance(exc, SystemExit):
            raise
        return failure.report(exc, failure.command_path(typer.main.get_command(app), args, PROG))


@process_exit.entry_point  # a process that ran Cryo must not finalise (decision 1302)
def main() -> None:
    sys.exit(run())
