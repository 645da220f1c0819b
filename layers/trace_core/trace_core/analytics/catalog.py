"""The stored analytics, listed in one tuple: `trace-lite analytics list` shows exactly these."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from trace_core.analytics import errors, holders, ports, results, staking, supply, windows
from trace_core.analytics import params as params_mod


@dataclasses.dataclass(frozen=True)
class Analytic:
    """One stored analytic: its parameters, the relation it reads, its SQL template and its shaping step."""

    name: str
    title: str
    description: str
    relation: str
    template: str
    params: type[params_mod.WindowParams]
    sql_values: Callable[[Any, windows.Window], dict[str, Any]]
    shape: Callable[[Any, windows.Window, ports.Rows, str], results.AnalyticsResult]

    def parameters(self) -> list[params_mod.ParamSpec]:
        return params_mod.describe(self.params)

    def parse(self, raw: dict[str, Any]) -> params_mod.WindowParams:
        parsed = params_mod.parse(self.name, self.params, raw)
        assert isinstance(parsed, params_mod.WindowParams)
        return parsed


def _from_module(module: Any) -> Analytic:
    return Analytic(
        name=module.NAME, title=module.TITLE, description=module.DESCRIPTION, relation=module.RELATION,
        template=module.TEMPLATE, params=module.Params, sql_values=module.sql_values, shape=module.shape,
    )


ANALYTICS: tuple[Analytic, ...] = tuple(_from_module(m) for m in (supply, holders, staking))
BY_NAME: dict[str, Analytic] = {a.name: a for a in ANALYTICS}


def get(name: str) -> Analytic:
    """The analytic called ``name``, or UnknownAnalyticError listing the names that exist."""
    found = BY_NAME.get(name)
    if found is None:
        raise errors.UnknownAnalyticError(
            f"no analytic named {name!r}; expected one of: {', '.join(BY_NAME)}",
            field="name", expected=list(BY_NAME),
        )
    return found
