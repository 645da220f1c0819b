"""Which URLs `up` treats as the user's: never one the stack itself started."""

from __future__ import annotations

from pathlib import Path

from trace_core import settings as settings_mod
from trace_core.lite import stack, state

MANAGED_PG = "postgresql://postgres@127.0.0.1:40001/postgres"


def _state() -> state.StackState:
    return state.StackState(components={
        "postgres": state.ComponentRecord(name="postgres", managed=True, url=MANAGED_PG, pid=1, port=40001),
        "moto": state.ComponentRecord(name="moto", managed=False, url="http://127.0.0.1:4566"),
    })


def test_a_url_filled_in_from_the_state_file_is_not_a_configured_one(tmp_path: Path):
    # GIVEN the settings every command builds (the stack's own URLs filled in from the state file)
    current = _state()
    filled = stack.settings_for(settings_mod.load({"TRACE_HOME": str(tmp_path)}), current)
    assert filled.database_url == MANAGED_PG
    # WHEN up derives what the user configured THEN the managed Postgres is Lite's again, the external moto stays
    mine = stack.configured(filled, current)
    assert mine.database_url is None
    assert mine.aws_endpoint_url == "http://127.0.0.1:4566"


def test_a_url_the_user_sets_is_kept(tmp_path: Path):
    env = {"TRACE_HOME": str(tmp_path), "TRACE_DATABASE_URL": "postgresql://me@db.example:5432/trace"}
    assert stack.configured(settings_mod.load(env), _state()).database_url == "postgresql://me@db.example:5432/trace"
