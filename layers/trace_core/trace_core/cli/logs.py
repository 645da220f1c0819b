"""`trace-lite logs [COMPONENT] [--follow]`: what the Lite stack's processes wrote, secrets masked.

Every component the stack starts writes ``<TRACE_HOME>/logs/<component>.log``,
except embedded Postgres, whose server log lives in its data directory
(``<TRACE_HOME>/postgres/server.log``). Lines are shown through
:func:`trace_core.redact.text`, so an RPC key a library printed is masked here too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from trace_core import redact
from trace_core.cli import context
from trace_core.lite import stack, state
from trace_core.settings import Settings

POLL_SECONDS = 0.25
_BLOCK = 64 * 1024


def register(app: typer.Typer) -> None:
    app.command()(logs)


def components() -> list[str]:
    """The stack's components, in start order (the names `logs` accepts)."""
    return [component.name for component in stack.COMPONENTS]


def log_path(settings: Settings, component: str) -> Path:
    if component == "postgres":
        record = state.read(settings.home).components.get("postgres")
        data_dir = Path(record.detail["data_dir"]) if record and "data_dir" in record.detail else \
            settings.home / "postgres"
        return data_dir / "server.log"
    return settings.home / "logs" / f"{component}.log"


def tail(path: Path, lines: int, end: int | None = None) -> list[str]:
    """The last ``lines`` lines of ``path`` before byte ``end`` (default: its size), read from the end."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = position = f.tell() if end is None else min(end, f.tell())
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            position = max(0, position - _BLOCK)
            f.seek(position)
            data = f.read(end - position)
    return data.decode(errors="replace").splitlines()[-lines:]


def _sizes(paths: dict[str, Path]) -> dict[str, int]:
    return {name: (path.stat().st_size if path.exists() else 0) for name, path in paths.items()}


def _follow(paths: dict[str, Path], offsets: dict[str, int], prefix: bool) -> Iterator[str]:
    """Lines written to each file after ``offsets``, as they come; a file truncated is read from its start."""
    offsets = dict(offsets)
    partial = dict.fromkeys(paths, "")
    while True:
        for name, path in paths.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < offsets[name]:
                offsets[name], partial[name] = 0, ""
            if size == offsets[name]:
                continue
            with open(path, "rb") as f:
                f.seek(offsets[name])
                chunk = f.read(size - offsets[name])
            offsets[name] += len(chunk)
            *complete, partial[name] = (partial[name] + chunk.decode(errors="replace")).split("\n")
            for line in complete:
                yield f"{name}| {line}" if prefix else line
        time.sleep(POLL_SECONDS)


def logs(
    component: str | None = typer.Argument(None, help="postgres, moto, anvil, query or host; all when omitted."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until Ctrl-C."),
    lines: int = typer.Option(20, "--lines", "-n", min=1, help="How many of the last lines to show."),
) -> None:
    """Show the last lines of a component's log (or of each), optionally following them."""
    names = components()
    if component is not None and component not in names:
        raise typer.BadParameter(f"unknown component {component!r}; expected one of {', '.join(names)}",
                                 param_hint="COMPONENT")
    settings = context.settings()
    chosen = [component] if component else names
    paths = {name: log_path(settings, name) for name in chosen}
    # Sizes first: the tail ends and the follow starts at the same byte, so no line is lost or shown twice.
    offsets = _sizes(paths)
    for name, path in paths.items():
        if component is None:
            print(f"==> {name}: {path} <==")
        if not path.exists():
            print(f"(no log yet: {name} has not been started by `trace-lite up` from {settings.home})")
        else:
            for line in tail(path, lines, offsets[name]):
                print(redact.text(line))
        if component is None:
            print()
    if not follow:
        return
    sys.stdout.flush()
    try:
        for line in _follow(paths, offsets, prefix=component is None):
            print(redact.text(line), flush=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a follow ends: exit 0, no traceback
