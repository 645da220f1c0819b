"""Rule: no cast to a type containing VARIANT.

DuckDB 2.0.0 converts JSON to VARIANT recursively with no depth bound, so
``(repeat('[', 20000) || repeat(']', 20000))::json::variant`` overflows the
worker's stack and kills it (plain DuckDB crashes the same way). The nesting
is inside a computed string, where the gate's depth budgets cannot see it, and
the gate cannot know an operand's type, so every cast to VARIANT is refused:
the granted datasets have no VARIANT columns, and a cast is the only way to
make one (DuckDB casts nothing to VARIANT implicitly; its ``variant_*``
functions then have no input to work on).
"""

from __future__ import annotations

from sqlglot import expressions as exp

from trace_core.query.gate.rules import context


def variant_casts(root: exp.Expr, ctx: context.Context) -> None:
    """Refuse any data type naming VARIANT (``::variant``, ``CAST``/``TRY_CAST``, nested in STRUCT/LIST/MAP)."""
    for node in root.find_all(exp.DataType):
        if node.this == exp.DataType.Type.VARIANT or (
            node.this == exp.DataType.Type.USERDEFINED and str(node.args.get("kind", "")).lower() == "variant"
        ):
            raise context.reject(
                "casts to VARIANT are not allowed (DuckDB's JSON-to-VARIANT conversion crashes on deep values)",
                "forbidden_syntax", node.parent if isinstance(node.parent, exp.Expr) else node,
            )
