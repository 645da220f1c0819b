"""Rule: every call names an allowed function, in a position where it is allowed.

Table functions (in FROM) and expression functions have separate allowlists
(:mod:`trace_core.query.gate.allowlist`). Calls qualified by a schema or
written as methods (``main.f()``, ``x.f()``) are refused, so the name checked
is the name DuckDB resolves. Functions that call another function named by a
string argument must name an allowed one with a literal.
"""

from __future__ import annotations

from sqlglot import expressions as exp

from trace_core.query.gate import allowlist
from trace_core.query.gate.rules import context


def functions(root: exp.Expr, ctx: context.Context) -> None:
    """Refuse calls outside the allowlist (file readers, settings, catalog, SQL-from-string, ...)."""
    for column in root.find_all(exp.Column):
        if not column.table and allowlist.normalize(column.name) in allowlist.SESSION_NAMES:
            raise context.reject(
                f"{column.name} is a session function DuckDB answers when no column has that name; "
                f"read a column of that name qualified by its table (t.{column.name})",
                "forbidden_function",
                column,
            )
    for call in root.find_all(exp.Anonymous):
        name = call.name
        parent = call.parent
        if isinstance(parent, exp.Dot) and parent.expression is call:
            raise context.reject(
                f"qualified or method-style calls are not allowed; write {name}(...) with its arguments",
                "forbidden_function",
                parent,
            )
        in_from = isinstance(parent, (exp.Table, exp.Lateral)) and parent.this is call
        if in_from and isinstance(parent, exp.Table) and (parent.args.get("db") or parent.args.get("catalog")):
            # `system.main.range(3)`: the qualifier picks the catalog DuckDB resolves the name in.
            raise context.reject(
                f"qualified calls are not allowed; write {name}(...) without a catalog or schema",
                "forbidden_function",
                parent,
            )
        if in_from and not allowlist.allowed_in_from(name):
            raise context.reject(_refusal(name, "table"), "forbidden_function", call)
        if not in_from and not allowlist.allowed_in_expression(name):
            raise context.reject(_refusal(name, "scalar"), "forbidden_function", call)
        _check_named_function_argument(call)


def _refusal(name: str, kind: allowlist.Kind) -> str:
    where = "as a table in FROM" if kind == "table" else "in an expression"
    rule = allowlist.denial(name, kind)
    why = f": it {rule.reason}" if rule is not None else ""
    return f"{name}() is not an allowed function {where}{why}"


def _check_named_function_argument(call: exp.Anonymous) -> None:
    folded = allowlist.normalize(call.name)
    index = allowlist.NAME_ARGUMENTS.get(folded or "")
    if index is None:
        return
    args = call.expressions
    target = args[index] if len(args) > index else None
    if not (isinstance(target, exp.Literal) and target.is_string and allowlist.allowed_in_expression(target.name)):
        raise context.reject(
            f"{call.name}() must name an allowed aggregate function as a string literal", "forbidden_function", call
        )
