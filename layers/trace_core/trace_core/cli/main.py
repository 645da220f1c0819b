"""Entry point of `trace-lite`. Each command module registers its commands on the app."""

from __future__ import annotations

import sys

import typer

from trace_core import errors
from trace_core.cli import analytics as analytics_cli
from trace_core.cli import chain, chainsync, demo, stack, tasks, worker
from trace_core.cli import query as query_cli
from trace_core.cli import sink as sink_cli
from trace_core.datasets import cli as datasets_cli

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Trace Lite: the whole platform on one machine.")

for module in (stack, chainsync, tasks, worker, chain, query_cli, datasets_cli, analytics_cli, demo, sink_cli):
    module.register(app)


def main() -> None:
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except errors.TraceError as exc:
        fix = exc.details.get("fix")
        print(f"error: {exc.message}" + (f"\n  fix: {fix}" if fix else ""), file=sys.stderr)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
