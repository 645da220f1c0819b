"""Where commands find the Lite stack when TRACE_HOME is unset: from any subdirectory of the project."""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_core import settings as settings_mod


def test_the_nearest_trace_lite_directory_above_wins(tmp_path: Path):
    (tmp_path / "project" / ".trace-lite").mkdir(parents=True)
    deep = tmp_path / "project" / "a" / "b"
    deep.mkdir(parents=True)
    assert settings_mod.find_home(deep) == tmp_path / "project" / ".trace-lite"


def test_the_search_stops_at_the_project_root(tmp_path: Path):
    # GIVEN a stack in a parent directory of the project: it belongs to another project
    (tmp_path / ".trace-lite").mkdir()
    (tmp_path / "project" / ".git").mkdir(parents=True)
    deep = tmp_path / "project" / "src"
    deep.mkdir()
    assert settings_mod.find_home(deep) == tmp_path / "project" / ".trace-lite"


def test_with_no_project_around_it_is_the_working_directory(tmp_path: Path):
    # tmp_path's parents hold neither marker (pytest's tmp tree under /tmp)
    assert settings_mod.find_home(tmp_path) == tmp_path / ".trace-lite"


def test_trace_home_overrides_the_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert settings_mod.load({}).home == tmp_path / ".trace-lite"
    assert settings_mod.load({"TRACE_HOME": "/elsewhere"}).home == Path("/elsewhere")
