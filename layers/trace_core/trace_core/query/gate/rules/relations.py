"""Rule: every table reference is a CTE in scope or a granted relation, by its bare name.

Names are resolved through sqlglot's scopes, so a CTE defined in one subquery
does not cover a same-named reference elsewhere (that one must be granted).
Any table reference no scope reached is checked as if no CTE were visible,
so a gap in scope analysis fails closed.

Linear in the query: CTE names are folded once, not once per scope that can
see them (2,800 CTEs used to cost seconds of CPU, folding millions of names).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import errors as sqlglot_errors
from sqlglot import expressions as exp
from sqlglot.optimizer import scope as sqlglot_scope

from trace_core.query.gate.rules import context


def relations(root: exp.Expr, ctx: context.Context) -> None:
    """Refuse paths, URLs, qualified and system names (forbidden) and plain names not granted (not granted)."""
    # Each folded CTE name and the spellings it was written with (sqlglot's scopes key CTEs as written).
    spellings: dict[str, set[str]] = {}
    for cte in root.find_all(exp.CTE):
        folded = context.fold(cte.alias)
        if not context.IDENTIFIER.match(folded):
            raise context.reject(
                f"CTE name {cte.alias!r} must be a plain identifier ([a-z_][a-z0-9_]*)", "forbidden_relation", cte
            )
        spellings.setdefault(folded, set()).add(cte.alias)
    try:
        scopes = sqlglot_scope.traverse_scope(root)
    except sqlglot_errors.SqlglotError as exc:
        raise context.reject(f"the query's names cannot be resolved: {exc}", "forbidden_syntax") from exc
    checked: set[int] = set()
    no_ctes: dict[str, object] = {}
    for scope in scopes:
        ctx.budget("resolving relation names")
        for table in scope.tables:
            checked.add(id(table))
            _check(table, scope.cte_sources, spellings, ctx)
    for table in root.find_all(exp.Table):
        if id(table) not in checked:
            _check(table, no_ctes, spellings, ctx)


def _check(table: exp.Table, in_scope: Mapping[str, object], spellings: dict[str, set[str]],
           ctx: context.Context) -> None:
    if isinstance(table.this, exp.Anonymous):
        return  # a table function: the functions rule decides
    if not isinstance(table.this, exp.Identifier):
        raise context.reject("only bare relation names can be read", "forbidden_relation", table)
    if table.args.get("db") or table.args.get("catalog"):
        raise context.reject(
            f"qualified names are not allowed; read the relation by its bare name ({table.name})",
            "forbidden_relation",
            table,
        )
    name = context.fold(table.name)
    if any(spelling in in_scope for spelling in spellings.get(name, ())):
        return
    if not context.IDENTIFIER.match(name):
        raise context.reject(
            f"{table.name!r} is not a relation: files, URLs and paths cannot be read", "forbidden_relation", table
        )
    if name in ctx.relations:
        ctx.relations_used.add(name)
        return
    if name.startswith(context.RESERVED_PREFIXES):
        raise context.reject(f"{table.name} is a system catalog; it cannot be read", "forbidden_relation", table)
    granted = ", ".join(sorted(ctx.relations)) or "none"
    raise context.reject(
        f"relation {table.name!r} is not granted (granted: {granted})", "relation_not_granted", table
    )
