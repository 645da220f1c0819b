"""Rule: the statement is one read-only query (SELECT, set operation, or a parenthesized one), with no INTO."""

from __future__ import annotations

from sqlglot import expressions as exp

from trace_core.query.gate.rules import context


def statement(root: exp.Expr, ctx: context.Context) -> None:
    """Refuse DDL, DML, SET/PRAGMA/COPY/ATTACH/... and every statement sqlglot keeps opaque (``Command``)."""
    if not isinstance(root, exp.Query):
        raise context.reject(f"only a SELECT query is allowed; this is {_kind(root)}", "not_select", root)
    for into in root.find_all(exp.Into):
        # sqlglot regenerates `SELECT ... INTO t` as CREATE TABLE AS: a write.
        raise context.reject("SELECT ... INTO writes a table; only reading is allowed", "not_select", into)


def _kind(root: exp.Expr) -> str:
    if isinstance(root, exp.Command):
        return f"a {str(root.this).upper()} statement"
    if isinstance(root, (exp.Column, exp.Identifier, exp.Var)):
        return f"a {root.sql(dialect='duckdb').upper()[:40]} statement"
    return f"a {type(root).__name__.upper()} statement"
