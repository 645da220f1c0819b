"""Every command of `trace-lite`, driven with bad arguments in-process: two lines, exit code 2, no traceback.

The commands are read from the typer app itself, so a command added later is covered without editing this file.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
import typer
from trace_core.cli import main


def _leaves(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if not isinstance(subcommands, dict):
        return [(path, command)]
    return [leaf for name, sub in subcommands.items() for leaf in _leaves(sub, (*path, name))]


def _groups(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None)
    if not isinstance(subcommands, dict):
        return []
    return [path] + [g for name, sub in subcommands.items() for g in _groups(sub, (*path, name))]


ROOT = typer.main.get_command(main.app)
COMMANDS = _leaves(ROOT)
GROUPS = _groups(ROOT)


def _params(command: Any) -> list[Any]:
    return [p for p in command.params if p.name != "help"]


def _bare(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1
    return args[0] if optional else annotation


def _bad_value(param: Any) -> str | None:
    """A value the parameter's type rejects, or None when any string is valid for it."""
    kind = _bare(param.type_descriptor.annotation)
    if kind in (int, float):
        return "not-a-number"
    if kind is Path and getattr(param.type_descriptor.parameter_info, "exists", False):
        return "/nonexistent/trace-lite-test.yaml"
    return None


def _placeholders(command: Any, skip: Any) -> list[str]:
    """Values for the required parameters other than ``skip`` (so only the bad one can fail)."""
    out: list[str] = []
    for p in _params(command):
        if p is skip or not p.required:
            continue
        value = "1" if _bare(p.type_descriptor.annotation) in (int, float) else "x"
        out += [value] if p.param_type_name == "argument" else [p.opts[0], value]
    return out


def _cases() -> list[Any]:
    cases = []
    for path, command in COMMANDS:
        name = " ".join(path)
        cases.append(pytest.param([*path, "--no-such-option"], "No such option", id=f"{name}: unknown option"))
        if any(p.required for p in _params(command)):
            cases.append(pytest.param(list(path), "Missing", id=f"{name}: missing argument"))
        for p in _params(command):
            bad = _bad_value(p)
            if bad is not None and p.param_type_name == "option":
                cases.append(pytest.param([*path, p.opts[0], bad, *_placeholders(command, p)], p.opts[0],
                                          id=f"{name}: bad {p.opts[0]}"))
    for path in GROUPS:
        cases.append(pytest.param([*path, "no-such-command"], "No such command",
                                  id=f"{' '.join(path) or 'trace-lite'}: unknown command"))
    return cases


def test_the_app_has_the_commands_the_docs_name() -> None:
    # GIVEN the app WHEN listing its commands THEN the ones this test relies on being discovered are there
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"apply", "status", "logs", "jobs delete", "jobs list", "task list", "query"} <= names


@pytest.mark.parametrize(("argv", "mentions"), _cases())
def test_a_usage_error_is_two_lines_with_the_fix_and_exit_code_2(argv: list[str], mentions: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a command line that is wrong WHEN trace-lite runs it
    code = main.run(argv)
    err = capsys.readouterr().err
    # THEN it exits 2 with an error line naming the problem and a fix line, and no traceback
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2, err
    assert lines[0].startswith("error: trace-lite") and mentions in lines[0], err
    assert lines[1].startswith("  fix: see `trace-lite") and lines[1].endswith(" --help`"), err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an installed trace-lite WHEN asked for its version THEN it prints it and exits 0
    assert main.run(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("trace-lite ") and out.split()[1][0].isdigit()


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "trace-lite")
def test_a_group_without_its_command_shows_help_and_exits_2(path: tuple[str, ...],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a group run with no subcommand WHEN trace-lite runs it THEN the help is the answer, without a traceback
    assert main.run(list(path)) == 2
    captured = capsys.readouterr()
    assert "Usage" in captured.out + captured.err and "Traceback" not in captured.err


def test_shell_completion_completes_commands(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN bash asking for completions of `trace-lite jobs de`
    monkeypatch.setenv("_TRACE_LITE_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "trace-lite jobs de")
    monkeypatch.setenv("COMP_CWORD", "2")
    # WHEN trace-lite runs THEN it answers `delete` and exits 0
    with pytest.raises(SystemExit) as exited:
        main.run([])
    assert exited.value.code == 0
    assert capsys.readouterr().out.split() == ["delete"]
