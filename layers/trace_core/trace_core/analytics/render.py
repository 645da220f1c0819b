"""SQL templates (``analytics/sql/*.sql``) with ``$name`` placeholders, rendered into one query.

The Query Service takes SQL text, not bound parameters, so values go into the
SQL as literals. They never go in as text: the template is parsed with sqlglot
(DuckDB dialect), each ``$name`` placeholder node is replaced by a literal node
built from an already validated Python value (int, bool, or a str that matched
its pattern), and the tree is regenerated. A value cannot change the query's
shape, whatever it holds; the Query Service's gate then regenerates it again.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

import sqlglot
from sqlglot import exp

from trace_core.analytics import errors

DIALECT = "duckdb"


@functools.cache
def template(name: str) -> str:
    """The text of ``analytics/sql/{name}.sql``."""
    return resources.files("trace_core.analytics").joinpath("sql").joinpath(f"{name}.sql").read_text()


def placeholders(sql: str) -> set[str]:
    """Names of the ``$name`` placeholders in ``sql``."""
    return {str(node.name) for node in sqlglot.parse_one(sql, read=DIALECT).find_all(exp.Placeholder)}


def _literal(name: str, value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise errors.AnalyticsError(
        f"parameter {name}: cannot render a {type(value).__name__} into SQL (expected int, bool or str)",
        field=name,
    )


def render(sql: str, values: Mapping[str, Any]) -> str:
    """``sql`` with every ``$name`` replaced by the literal of ``values[name]``.

    Every placeholder needs a value and every value a placeholder, so a template and
    its analytic cannot drift apart silently.
    """
    tree = sqlglot.parse_one(sql, read=DIALECT)
    used: set[str] = set()

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder):
            name = str(node.name)
            if name not in values:
                raise errors.AnalyticsError(f"the template needs a value for ${name}", field=name)
            used.add(name)
            return _literal(name, values[name])
        return node

    rendered = tree.transform(substitute)
    unused = sorted(set(values) - used)
    if unused:
        raise errors.AnalyticsError(f"the template has no placeholder ${unused[0]}", field=unused[0])
    return rendered.sql(dialect=DIALECT, pretty=True)


def render_template(name: str, values: Mapping[str, Any]) -> str:
    return render(template(name), values)
