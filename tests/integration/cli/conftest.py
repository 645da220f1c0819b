"""`trace-lite` run in-process against this module's real Postgres: ``cli(argv) -> (code, out, err)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def lite_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, moto_url: str) -> Path:
    """A Lite home with no stack of its own, pointed at the test database and the test moto server
    (Lite refuses to build an AWS client without a local endpoint)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TRACE_HOME", str(home))
    monkeypatch.setenv("TRACE_DATABASE_URL", database_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal width; keep each message on one line
    return home


@pytest.fixture
def cli(lite_env: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main.run(list(argv))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return code, captured.out, captured.err

    return run


@pytest.fixture
def db(database_url: str):
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn
