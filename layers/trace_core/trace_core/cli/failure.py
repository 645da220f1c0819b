"""How an error reaches a person: an ``error:`` line, a ``fix:`` line, an exit code, secrets masked.

Exit codes: 2 for a usage error (the command line itself is wrong), 1 for an
error Trace raised on purpose or could not foresee, 130 for Ctrl-C. No user
error prints a traceback; an unforeseen one (a bug) prints Python's, redacted,
so it can be reported. See docs/decisions/1305.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any

import psycopg
import typer

from trace_core import errors, redact

USAGE = 2
FAILURE = 1
INTERRUPTED = 130


def say(message: str, fix: str | None = None) -> None:
    """Print an error (and its fix) on stderr, URLs redacted."""
    print(f"error: {redact.text(message)}" + (f"\n  fix: {redact.text(fix)}" if fix else ""), file=sys.stderr)


def command_path(root: Any, argv: Sequence[str], prog: str) -> str:
    """The command the user was running (``trace-lite task list``), read from ``argv`` against the app.

    ``root`` is the app's click command (``typer.main.get_command(app)``); groups have ``commands``.
    """
    words, command = [prog], root
    for arg in argv:
        subcommands = getattr(command, "commands", None)
        if arg.startswith("-") or not isinstance(subcommands, dict) or arg not in subcommands:
            break
        words.append(arg)
        command = subcommands[arg]
    return " ".join(words)


def usage_error(exc: typer.TyperException, path: str) -> int:
    """Click's usage errors, told in two lines. Typer bundles its own click: every exception it raises for
    the command line is a ``typer.TyperException`` (its click's ``UsageError`` among them) carrying the
    exit code click would use."""
    ctx: Any = getattr(exc, "ctx", None)
    message = exc.format_message()
    if ctx is not None and (not message.strip() or message.lstrip().startswith("Usage:")):
        # A group run without its subcommand (no_args_is_help): the help is the answer. Typer's rich
        # help has already been printed by then (the message is empty); click's plain one is the message.
        if message.strip():
            print(message, file=sys.stderr)
        return USAGE
    where = ctx.command_path if ctx is not None and ctx.command_path.count(" ") >= path.count(" ") else path
    say(f"{where}: {message}", f"see `{where} --help`")
    return int(getattr(exc, "exit_code", USAGE))


def report(exc: BaseException, path: str) -> int:
    """Show ``exc`` to the user; returns the exit code."""
    if isinstance(exc, errors.TraceError):
        fix = exc.details.get("fix")
        say(exc.message, str(fix) if fix else None)
        return FAILURE
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    if isinstance(exc, typer.Abort):
        say("aborted: nothing was changed by the step that asked")
        return FAILURE
    if isinstance(exc, typer.TyperException):
        return usage_error(exc, path)
    if isinstance(exc, psycopg.OperationalError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        say(f"{path}: cannot reach Postgres ({first})",
            "run `trace-lite up` (or check TRACE_DATABASE_URL), then try again")
        return FAILURE
    # Not a user error: a bug. Its traceback is what a report needs; URLs in it are masked all the same.
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    print(redact.text(text), file=sys.stderr, end="")
    say(f"{path}: unexpected {type(exc).__name__} (a bug in Trace: please report it with the lines above)")
    return FAILURE
