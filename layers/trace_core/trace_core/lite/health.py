"""Health of the Lite stack's components: each one's own answer, then what its dependencies make of it.

Pure: the probes that produce the answers live in :mod:`trace_core.lite.stack`.
A component that answers while something it needs is down is ``degraded``
(the host answers its health check with Postgres gone, and fails every task).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal

State = Literal["healthy", "degraded", "down"]


@dataclasses.dataclass(frozen=True)
class Health:
    state: State
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "healthy"

    def __str__(self) -> str:
        return f"{self.state}: {self.detail}" if self.detail else self.state


HEALTHY = Health("healthy")


def with_dependencies(own: Mapping[str, Health], depends_on: Mapping[str, Sequence[str]]) -> dict[str, Health]:
    """``own`` health, with each answering component degraded when a recorded dependency of it is not healthy."""
    result: dict[str, Health] = {}
    for name, health in own.items():
        if not health.ok:
            result[name] = health
            continue
        missing = [dep for dep in depends_on.get(name, ()) if dep in own and not own[dep].ok]
        result[name] = Health("degraded", ", ".join(f"{dep} down" for dep in missing)) if missing else health
    return result


def needs_restart(name: str, depends_on: Mapping[str, Sequence[str]], restarted: set[str]) -> bool:
    """Whether ``name`` must be restarted because a component it depends on was just (re)started.

    Restarting the dependents, rather than hoping their connection pools and listeners
    recover, is what makes one `up` enough (docs/decisions/1304).
    """
    return bool(restarted.intersection(depends_on.get(name, ())))
