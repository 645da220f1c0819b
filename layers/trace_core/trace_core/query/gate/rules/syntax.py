"""Rule: every node of the tree is a construct of the reviewed read-only grammar.

An allowlist of sqlglot node classes: anything sqlglot adds later, or any
statement it keeps opaque, is refused by construction. Calls by name are
``exp.Anonymous`` here (see :mod:`~trace_core.query.gate.dialect`) and their
names are the functions rule's business; the typed calls below are grammar.
"""

from __future__ import annotations

from sqlglot import expressions as exp

from trace_core.query.gate.rules import context

# Query structure.
_STRUCTURE: tuple[type[exp.Expr], ...] = (
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.From, exp.Join, exp.Where,
    exp.Group, exp.Having, exp.Qualify, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Fetch,
    exp.Window, exp.WindowSpec, exp.Distinct, exp.With, exp.CTE, exp.TableAlias, exp.Table, exp.Values,
    exp.Tuple, exp.Lateral, exp.Unnest, exp.TableSample, exp.Rollup, exp.Cube, exp.GroupingSets,
    exp.Filter, exp.WithinGroup, exp.IgnoreNulls, exp.RespectNulls,
    # List comprehensions ([f(x) FOR x IN list IF p(x)]): a loop over a list value, reading nothing.
    exp.Comprehension,
)
# Names, values and types.
_TERMS: tuple[type[exp.Expr], ...] = (
    exp.Star, exp.Column, exp.Identifier, exp.Alias, exp.Aliases, exp.Paren, exp.Dot, exp.Bracket,
    exp.Slice, exp.Literal, exp.Boolean, exp.Null, exp.Var, exp.Interval, exp.IntervalSpan, exp.DataType,
    exp.DataTypeParam, exp.ColumnDef, exp.Lambda, exp.PropertyEQ, exp.Kwarg, exp.ByteString,
    exp.HexString, exp.BitString, exp.RawString, exp.National, exp.UnicodeString,
)
# Operators.
_OPERATORS: tuple[type[exp.Expr], ...] = (
    exp.And, exp.Or, exp.Not, exp.Xor, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod,
    exp.Pow, exp.DPipe, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseNot,
    exp.BitwiseLeftShift, exp.BitwiseRightShift, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.SimilarTo,
    exp.RegexpLike, exp.RegexpILike, exp.Glob, exp.Escape, exp.Collate, exp.Any, exp.All, exp.Exists,
    exp.ArrayOverlaps, exp.ArrayContainsAll, exp.ArrayContainedBy, exp.AtTimeZone, exp.Abs, exp.StartsWith,
    exp.Distance,
    exp.JSONExtract, exp.JSONExtractScalar, exp.JSONPath, exp.JSONPathKey, exp.JSONPathRoot,
    exp.JSONPathSubscript, exp.JSONPathWildcard, exp.JSONPathSlice, exp.JSONPathSelector,
    exp.JSONPathUnion, exp.JSONPathRecursive,
)
# Calls with their own grammar, kept typed by the gate's dialect; all pure.
_GRAMMAR_CALLS: tuple[type[exp.Expr], ...] = (
    exp.Anonymous, exp.Cast, exp.TryCast, exp.Extract, exp.Trim, exp.Substring, exp.StrPosition, exp.Case,
    exp.If, exp.Array, exp.Struct, exp.ToMap, exp.Map, exp.VarMap, exp.CurrentDate, exp.CurrentTime,
    exp.CurrentTimestamp, exp.Localtime, exp.Localtimestamp,
)
ALLOWED: frozenset[type[exp.Expr]] = frozenset((*_STRUCTURE, *_TERMS, *_OPERATORS, *_GRAMMAR_CALLS))

_HINTS: dict[type[exp.Expr], str] = {
    exp.Placeholder: "query parameters are not supported; write the values into the query",
    exp.Pivot: "PIVOT/UNPIVOT are not supported; use conditional aggregation (sum(x) FILTER (WHERE ...))",
    exp.HistoricalData: "time travel (AT/BEFORE) is not supported; the grant pins the version",
}


def syntax(root: exp.Expr, ctx: context.Context) -> None:
    """Refuse any node whose class is not in :data:`ALLOWED`."""
    for node in root.walk():
        kind = type(node)
        if kind in ALLOWED:
            continue
        if isinstance(node, exp.Func):
            # A keyword function such as CURRENT_USER or CURRENT_CATALOG: catalog or session introspection.
            raise context.reject(f"{node.sql_name()} is not an allowed function", "forbidden_function", node)
        hint = _HINTS.get(kind, f"{kind.__name__} is not part of the allowed read-only SQL")
        raise context.reject(hint, "forbidden_syntax", node)
