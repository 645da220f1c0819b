"""Rule: the tree fits the depth and node budgets (walked iteratively, so a deep tree cannot exhaust the stack)."""

from __future__ import annotations

from sqlglot import expressions as exp

from trace_core.query.gate.rules import context


def depth(root: exp.Expr, ctx: context.Context) -> None:
    """Refuse trees deeper than ``max_depth`` or larger than ``max_nodes``."""
    stack: list[tuple[exp.Expr, int]] = [(root, 1)]
    nodes = 0
    while stack:
        node, level = stack.pop()
        nodes += 1
        if level > ctx.limits.max_depth:
            raise context.reject(f"the query is nested more than {ctx.limits.max_depth} levels deep", "too_deep")
        if nodes > ctx.limits.max_nodes:
            raise context.reject(f"the query has more than {ctx.limits.max_nodes} syntax nodes", "too_long")
        stack.extend((child, level + 1) for child in node.iter_expressions())
