"""The Lite state file: what `trace-lite up` started, where, and with which pid.

`down` stops exactly what is recorded here with ``managed: true``; other
commands read it to find the running stack's endpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

FILE_NAME = "state.json"


class ComponentRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    managed: bool
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
    return StackState.model_validate_json(file.read_text())


def write(home: Path, state: StackState) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = path(home).with_suffix(".tmp")
    tmp.write_text(json.dumps(state.model_dump(), indent=2))
    os.replace(tmp, path(home))


def clear(home: Path) -> None:
    path(home).unlink(missing_ok=True)
