"""The quality gates are wired: `make test` lints and type-checks first, and unit tests have no network."""

from __future__ import annotations

import re
import socket
import tomllib
from pathlib import Path

import pytest
import pytest_socket

ROOT = Path(__file__).resolve().parents[2]


def _targets(makefile: str) -> dict[str, tuple[list[str], list[str]]]:
    """``target -> (prerequisites, recipe lines)`` of a Makefile's plain rules."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] | None = None
    for line in makefile.splitlines():
        rule = re.match(r"^([A-Za-z][\w-]*):(?!=)(.*)$", line)
        if rule:
            current = []
            found[rule[1]] = (rule[2].split(), current)
        elif line.startswith("\t") and current is not None:
            current.append(line.strip())
        elif not line.startswith("#"):
            current = None
    return found


def test_make_test_runs_ruff_and_mypy_before_pytest():
    # GIVEN the Makefile WHEN its test target is read THEN lint and typecheck are prerequisites of it
    targets = _targets((ROOT / "Makefile").read_text())
    prerequisites, recipe = targets["test"]
    assert {"lint", "typecheck"} <= set(prerequisites)
    assert any("pytest" in line for line in recipe)
    # AND they run ruff over every Python tree and mypy with the pyproject configuration
    assert any(re.search(r"ruff check layers functions cdk tests bench$", line) for line in targets["lint"][1])
    assert any(re.search(r"/mypy$", line) for line in targets["typecheck"][1])


def test_the_gates_are_configured_as_documented():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert "E" in config["ruff"]["lint"]["select"] and "E501" not in config["ruff"]["lint"].get("ignore", [])
    assert config["mypy"]["strict"] is True and config["mypy"]["packages"] == ["trace_core"]


def test_a_unit_test_cannot_open_a_socket():
    # GIVEN tests/unit/conftest.py's guard WHEN a unit test reaches for the network THEN it is refused
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
