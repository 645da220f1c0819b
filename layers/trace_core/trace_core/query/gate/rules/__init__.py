"""The gate's policy: one pure function per rule, applied in this order.

Each rule takes the parsed root and a :class:`~trace_core.query.gate.rules.context.Context`
and raises :class:`~trace_core.query.errors.QueryRejectedError` or returns.
Cheap, structural rules come first, so later rules only see small, shallow,
single-statement SELECT trees made of allowed constructs.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import expressions as exp

from trace_core.query.gate.rules import context, depth, functions, relations, statement, syntax, variant_casts

Rule = Callable[[exp.Expr, context.Context], None]

RULES: tuple[Rule, ...] = (
    statement.statement,
    depth.depth,
    syntax.syntax,
    variant_casts.variant_casts,
    functions.functions,
    relations.relations,
)
