"""Parameters of the stored analytics: pydantic models, their description, and parsing with clear errors.

Every analytic's parameters subclass :class:`WindowParams` (``from_block`` inclusive,
``to_block`` exclusive, both defaulting to the synced data). Values arrive as JSON
values or as the strings of ``--param k=v``; either way a wrong one raises
ParameterError naming the parameter, what was expected, and listing every parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from trace_core.analytics import errors


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Address = Annotated[
    str, BeforeValidator(_lower), Field(pattern=r"^0x[0-9a-f]{40}$", json_schema_extra={"kind": "address"})
]
BlockNumber = Annotated[int, Field(ge=0, le=2**53)]


class WindowParams(BaseModel):
    """The block window every analytic takes. Ranges are end-exclusive: ``to_block`` is not included."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    from_block: BlockNumber | None = Field(
        default=None, description="first block of the window (inclusive); default: the first synced block"
    )
    to_block: BlockNumber | None = Field(
        default=None, description="end of the window (exclusive); default: the end of the synced data"
    )


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One parameter as `analytics list` shows it."""

    name: str
    type: str
    required: bool
    default: Any
    description: str

    def line(self) -> str:
        need = "required" if self.required else f"default {self.default}" if self.default is not None else "optional"
        return f"{self.name} ({self.type}, {need}): {self.description}"


def _type_name(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf", [schema])
    for option in options:
        kind = option.get("kind")
        if kind:
            return str(kind)
        if option.get("type") == "integer":
            low, high = option.get("minimum"), option.get("maximum")
            if low is not None and high is not None and high < 2**53:
                return f"integer {low}..{high}"
            return "block number" if low == 0 else "integer"
        if option.get("type") == "boolean":
            return "boolean"
        if option.get("type") == "string":
            return "string"
    return "value"


def describe(model: type[BaseModel]) -> list[ParamSpec]:
    """The parameters of ``model``, required ones first, in declaration order otherwise."""
    schema = model.model_json_schema()
    specs = []
    for name, field in model.model_fields.items():
        specs.append(ParamSpec(
            name=name,
            type=_type_name(schema["properties"][name]),
            required=field.is_required(),
            default=None if field.is_required() else field.default,
            description=field.description or "",
        ))
    return sorted(specs, key=lambda s: not s.required)


def usage(analytic: str, model: type[BaseModel]) -> str:
    return f"parameters of {analytic}: " + "; ".join(spec.line() for spec in describe(model))


def parse(analytic: str, model: type[BaseModel], raw: Mapping[str, Any]) -> BaseModel:
    """Validate ``raw`` into ``model`` or raise ParameterError naming the parameter and listing all of them."""
    known = set(model.model_fields)
    expected = [spec.line() for spec in describe(model)]
    for name in raw:
        if name not in known:
            raise errors.ParameterError(
                f"{analytic}: unknown parameter {name!r}; {usage(analytic, model)}",
                analytic=analytic, field=name, expected=expected,
            )
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "(parameters)"
        if first["type"] == "missing":
            problem = "is required but was not given"
        else:
            problem = f"expected {_expectation(first)}, got {first.get('input')!r}"
        name_part = f"parameter {name}" if first["type"] == "missing" else f"parameter {name}:"
        raise errors.ParameterError(
            f"{analytic}: {name_part} {problem}; {usage(analytic, model)}",
            analytic=analytic, field=name, expected=expected,
        ) from exc


def _expectation(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch" and "0-9a-f]{40}" in str(ctx.get("pattern", "")):
        return "an address (0x and 40 hex digits)"
    if kind.startswith("int_") or kind == "int_parsing":
        return "an integer"
    if kind == "greater_than_equal":
        return f"an integer >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"an integer <= {ctx.get('le')}"
    if kind.startswith("bool"):
        return "true or false"
    return str(error["msg"]).removeprefix("Value error, ").lower()
