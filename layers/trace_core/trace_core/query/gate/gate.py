"""The gate's one public function: ``check``.

Order of work, cheapest first, each step failing closed:

1. budgets on the raw text (characters, control characters);
2. tokens: budget and parenthesis depth, so deep nesting is refused before the
   (recursive) parser sees it;
3. parse with :class:`~trace_core.query.gate.dialect.GateDuckDB` (calls keep
   their written names); more than one statement is refused;
4. the policy rules of :data:`trace_core.query.gate.rules.RULES`, in order;
5. regenerate the SQL (no comments), parse *that* again and re-run the rules:
   the regenerated text is what executes, so it is what must pass. A query
   whose regeneration does not reproduce itself is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Collection

import sqlglot
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import expressions as exp
from sqlglot import tokens as sqlglot_tokens

from trace_core.query import errors
from trace_core.query.gate import dialect, rules
from trace_core.query.gate.rules import context as rule_context

_DIALECT = dialect.GateDuckDB


class _NoCommandFallbackWarnings(logging.Filter):
    """sqlglot warns, quoting the SQL, when it keeps a statement opaque; the gate refuses those anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_NoCommandFallbackWarnings())
# Tab, newline and carriage return are whitespace; every other control character is refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_OPEN = {sqlglot_tokens.TokenType.L_PAREN, sqlglot_tokens.TokenType.L_BRACKET, sqlglot_tokens.TokenType.L_BRACE}
_CLOSE = {sqlglot_tokens.TokenType.R_PAREN, sqlglot_tokens.TokenType.R_BRACKET, sqlglot_tokens.TokenType.R_BRACE}


class GateLimits(BaseModel):
    """Size and nesting budgets. Defaults fit analytics queries with room to spare."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_chars: int = Field(default=100_000, ge=1, description="Characters of SQL text.")
    max_tokens: int = Field(default=20_000, ge=1, description="Lexical tokens.")
    max_paren_depth: int = Field(default=32, ge=1, description="Nested (), [] and {}.")
    max_depth: int = Field(default=160, ge=8, description="Depth of the parsed tree.")
    max_nodes: int = Field(default=50_000, ge=1, description="Nodes of the parsed tree.")


@dataclasses.dataclass(frozen=True)
class GatedQuery:
    """An accepted query: ``sql`` is the regenerated text to execute; ``relations_used`` the granted names read."""

    sql: str
    relations_used: frozenset[str]


def check(sql: str, *, relations: Collection[str], limits: GateLimits | None = None) -> GatedQuery:
    """Accept one read-only SELECT over ``relations`` or raise :class:`~trace_core.query.errors.QueryRejectedError`.

    ``relations`` are the names the caller was granted (plain identifiers, matched
    case-insensitively like DuckDB does). Raises
    :class:`~trace_core.query.errors.InvalidRelationError` if one is not a plain identifier.
    """
    limits = limits or GateLimits()
    granted = rule_context.granted_names(relations)
    root = _parse(sql, limits)
    ctx = rule_context.Context(relations=granted, limits=limits)
    _apply(root, ctx)
    regenerated = _generate(root)
    # Second pass: the regenerated text is what runs, so it must pass on its own and be stable.
    again = _parse(regenerated, limits)
    ctx_again = rule_context.Context(relations=granted, limits=limits)
    _apply(again, ctx_again)
    if _generate(again) != regenerated:
        raise errors.QueryRejectedError(
            "the query uses a construct the gate cannot reproduce faithfully; rewrite it in plainer SQL",
            reason="forbidden_syntax",
        )
    return GatedQuery(sql=regenerated, relations_used=frozenset(ctx_again.relations_used))


def _apply(root: exp.Expr, ctx: rule_context.Context) -> None:
    try:
        for rule in rules.RULES:
            rule(root, ctx)
    except RecursionError as exc:  # a tree deeper than Python's stack: refuse, never crash
        raise errors.QueryRejectedError("the query is nested too deeply", reason="too_deep") from exc


def _parse(sql: str, limits: GateLimits) -> exp.Expr:
    if len(sql) > limits.max_chars:
        raise errors.QueryRejectedError(
            f"the query is {len(sql)} characters long; the limit is {limits.max_chars}", reason="too_long"
        )
    control = _CONTROL.search(sql)
    if control:
        raise errors.QueryRejectedError(
            f"the query contains the control character U+{ord(control.group()):04X} at offset {control.start()}",
            reason="syntax",
        )
    _check_tokens(sql, limits)
    try:
        statements = sqlglot.parse(sql, dialect=_DIALECT, error_level=sqlglot.ErrorLevel.RAISE)
    except RecursionError as exc:
        raise errors.QueryRejectedError("the query is nested too deeply", reason="too_deep") from exc
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        raise errors.QueryRejectedError(f"the query is not valid SQL: {_first_line(exc)}", reason="syntax") from exc
    # A trailing ';' followed by a comment parses as an empty statement: nothing to run, dropped.
    real = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
    if not real:
        raise errors.QueryRejectedError("the query is empty", reason="syntax")
    if len(real) > 1:
        raise errors.QueryRejectedError(
            f"the text holds {len(real)} statements; send exactly one SELECT query", reason="multiple_statements"
        )
    return real[0]


def _check_tokens(sql: str, limits: GateLimits) -> None:
    try:
        tokens = _DIALECT().tokenize(sql)
    except sqlglot.errors.TokenError as exc:
        raise errors.QueryRejectedError(f"the query is not valid SQL: {_first_line(exc)}", reason="syntax") from exc
    if len(tokens) > limits.max_tokens:
        raise errors.QueryRejectedError(
            f"the query has {len(tokens)} tokens; the limit is {limits.max_tokens}", reason="too_long"
        )
    depth = 0
    for token in tokens:
        if token.token_type in _OPEN:
            depth += 1
            if depth > limits.max_paren_depth:
                raise errors.QueryRejectedError(
                    f"the query nests brackets more than {limits.max_paren_depth} deep", reason="too_deep"
                )
        elif token.token_type in _CLOSE:
            depth -= 1


def _generate(root: exp.Expr) -> str:
    try:
        return root.sql(dialect=_DIALECT, comments=False)
    except RecursionError as exc:
        raise errors.QueryRejectedError("the query is nested too deeply", reason="too_deep") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
