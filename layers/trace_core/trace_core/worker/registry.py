"""Which operators a worker runs: a :class:`Registry` per worker pool, built once at start by :func:`for_pool`.

:data:`CATALOGUE` lists the platform's operators by name, each as the path of its
:class:`~trace_core.worker.operators.Operator` (``"module:attribute"``), imported only when a pool runs it:
a pool without ``cryo_ingest`` never imports Cryo's code. A pool runs the platform operators it names,
plus every operator of its operator modules (``TRACE_OPERATOR_MODULES=pkg.mod,...``): a module exposes
``OPERATORS = {"name": fn_or_Operator}`` (a plain function declares no port); importing it registers nothing.
A name that is not in the catalogue, a module that cannot be imported or has no ``OPERATORS``, and a name
defined twice all fail at start, with the cause. Workers claim tasks by :attr:`Registry.names`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from trace_core.dispatcher import models
from trace_core.worker import errors, operators

CATALOGUE: Mapping[str, str] = MappingProxyType({
    "noop": "trace_core.worker.operators:NOOP",
    "cryo_ingest": "trace_core.ingest.operator:OPERATOR",
    "udf_invoke": "trace_core.udf.operator:OPERATOR",
})


@dataclasses.dataclass(frozen=True)
class Registry:
    """The operators one worker runs, by name."""

    by_name: Mapping[str, operators.Operator]

    @property
    def names(self) -> list[str]:
        """The operator names this worker claims tasks by."""
        return sorted(self.by_name)

    @property
    def runs_cryo(self) -> bool:
        """Some operator runs Cryo: the worker sets up its allocator and Cryo's threads before starting."""
        return any(op.runs_cryo for op in self.by_name.values())

    def get(self, name: str) -> operators.Operator:
        """The operator called ``name``, or UnknownOperatorError listing the known ones."""
        operator = self.by_name.get(name)
        if operator is None:
            raise errors.UnknownOperatorError(
                f"no operator {name!r} in this worker (known: {', '.join(self.names) or 'none'})",
                operator=name, known=self.names,
                fix="add it to the worker pool's operators, or its module to TRACE_OPERATOR_MODULES",
            )
        return operator

    def run(self, ctx: operators.OperatorContext) -> models.Success | models.Failure:
        """Run the context's operator (see :func:`~trace_core.worker.operators.run`)."""
        return operators.run(self.get(ctx.operator).fn, ctx)


def for_pool(names: Iterable[str] | None = None, extra_modules: str | Sequence[str] = "") -> Registry:
    """The registry of a worker pool running the platform operators ``names`` (None: every one of the
    catalogue) and the operators of ``extra_modules`` (module paths, or one comma-separated string)."""
    chosen = list(CATALOGUE) if names is None else list(names)
    unknown = sorted(set(chosen) - set(CATALOGUE))
    if unknown:
        raise errors.UnknownOperatorError(
            f"no platform operator {', '.join(map(repr, unknown))} (known: {', '.join(sorted(CATALOGUE))})",
            operator=unknown[0], known=sorted(CATALOGUE), field="operators",
        )
    found: dict[str, operators.Operator] = {name: _platform(name) for name in chosen}
    origin = dict.fromkeys(found, "the platform")
    modules = extra_modules.split(",") if isinstance(extra_modules, str) else list(extra_modules)
    for module in (m.strip() for m in modules):
        if not module:
            continue
        for name, operator in _module_operators(module).items():
            if name in CATALOGUE or name in found:
                raise errors.WorkerError(
                    f"operator {name!r} of module {module!r} is already defined by "
                    f"{origin.get(name, 'the platform')}", field="TRACE_OPERATOR_MODULES", module=module, operator=name,
                )
            found[name], origin[name] = operator, f"module {module!r}"
    return Registry(MappingProxyType(found))


def _platform(name: str) -> operators.Operator:
    module, _, attribute = CATALOGUE[name].partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not isinstance(found, operators.Operator):
        raise errors.WorkerError(f"platform operator {name!r} ({CATALOGUE[name]}) is not an Operator", operator=name)
    return found


def _module_operators(module: str) -> dict[str, operators.Operator]:
    """The ``OPERATORS`` of ``module``, each as an Operator."""
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise errors.WorkerError(f"operator module {module!r} could not be imported: {exc}",
                                 field="TRACE_OPERATOR_MODULES", module=module) from exc
    declared: Any = getattr(imported, "OPERATORS", None)
    if not isinstance(declared, Mapping):
        raise errors.WorkerError(
            f"operator module {module!r} has no OPERATORS mapping (name -> function or Operator)",
            field="TRACE_OPERATOR_MODULES", module=module,
            fix='define OPERATORS = {"my_operator": my_operator} in it',
        )
    out: dict[str, operators.Operator] = {}
    for name, value in declared.items():
        if not isinstance(name, str) or not name:
            raise errors.WorkerError(
                f"OPERATORS of module {module!r} has the name {name!r} (expected a non-empty string)",
                field="TRACE_OPERATOR_MODULES", module=module,
            )
        if isinstance(value, operators.Operator):
            out[name] = value
        elif callable(value):
            out[name] = operators.Operator(value)
        else:
            raise errors.WorkerError(
                f"OPERATORS[{name!r}] of module {module!r} is a {type(value).__name__}, not a function or an Operator",
                field="TRACE_OPERATOR_MODULES", module=module, operator=name,
            )
    return out
