"""What an analytic returns: named tables of typed columns, exact in Python, explicit in JSON.

In Python, amounts are ``int`` (uint256 fits) and ratios ``Fraction``. In JSON,
amounts are decimal strings (a JSON number would lose digits past 2**53 in most
readers) and ratios decimal strings with 18 places; a consumer never has to guess.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, Literal

from trace_core.analytics import metrics

ColumnKind = Literal["block", "integer", "amount", "ratio", "address", "text"]


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    """Rows of one shape. ``rows`` hold Python values: int for block/integer/amount, Fraction for ratio."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name (Python values, exact)."""
        names = self.column_names
        return [dict(zip(names, row)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        index = self.column_names.index(name)
        return [row[index] for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": [{"name": c.name, "kind": c.kind, "description": c.description} for c in self.columns],
            "rows": [[json_value(c.kind, v) for c, v in zip(self.columns, row)] for row in self.rows],
        }


def json_value(kind: ColumnKind, value: Any) -> Any:
    """One cell for JSON: amounts as decimal strings, ratios as 18-place decimal strings."""
    if value is None:
        return None
    if kind == "amount":
        return str(int(value))
    if kind == "ratio":
        return metrics.decimal_text(Fraction(value))
    return value


@dataclasses.dataclass(frozen=True)
class AnalyticsResult:
    """One run of one analytic: its validated parameters, the window it covered and its tables.

    ``from_block``/``to_block`` are the window actually used (``to_block`` exclusive).
    ``summary`` is a one-row table of headline values (typed like any other row).
    """

    name: str
    title: str
    params: dict[str, Any]
    from_block: int
    to_block: int
    tables: dict[str, Table]
    summary: Table | None = None
    sql: tuple[str, ...] = ()

    def table(self, name: str) -> Table:
        return self.tables[name]

    def summary_dict(self) -> dict[str, Any]:
        """Headline values, exact Python values."""
        return self.summary.dicts()[0] if self.summary is not None and self.summary.rows else {}

    def to_json(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        if self.summary is not None and self.summary.rows:
            summary = {c.name: json_value(c.kind, v) for c, v in zip(self.summary.columns, self.summary.rows[0])}
        return {
            "name": self.name,
            "title": self.title,
            "params": self.params,
            "window": {"from_block": self.from_block, "to_block": self.to_block, "to_block_exclusive": True},
            "summary": summary,
            "tables": {name: table.to_json() for name, table in self.tables.items()},
        }


def summary(columns: tuple[Column, ...], values: tuple[Any, ...]) -> Table:
    """A one-row summary table."""
    return Table(name="summary", title="Summary", columns=columns, rows=(values,))
