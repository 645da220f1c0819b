"""The Lite state file: what `trace-lite up` started, where, and with which pid.

`down` stops exactly what is recorded here with ``managed: true``; other
commands read it to find the running stack's endpoints. ``managed`` also tells
`up` what it may restart: a managed component that died is started again by
Lite (Postgres on the same data directory); an unmanaged one is a URL the user
configured in the environment, which Lite never starts or stops.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from trace_core import errors

FILE_NAME = "state.json"


class ComponentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    managed: bool  # true: Lite started it (and restarts it); false: the environment named it
    url: str
    pid: int | None = None
    port: int | None = None
    detail: dict[str, Any] = {}


class StackState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    components: dict[str, ComponentRecord] = {}


def path(home: Path) -> Path:
    return home / FILE_NAME


def read(home: Path) -> StackState:
    file = path(home)
    if not file.exists():
        return StackState()
    try:
        return StackState.model_validate_json(file.read_text())
    except ValidationError as exc:
        raise errors.ComponentError(
            f"the Lite state file {file} is unreadable ({exc.errors()[0]['msg']})",
            component="state",
            fix=f"stop what it started by hand, then delete {file} and run `trace-lite up`",
        ) from exc


def write(home: Path, state: StackState) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = path(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(state.model_dump(), indent=2))
    os.replace(tmp, path(home))


def clear(home: Path) -> None:
    path(home).unlink(missing_ok=True)
