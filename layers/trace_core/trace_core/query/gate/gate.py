"""The gate's one public function: ``check``.

Order of work, cheapest first, each step failing closed:

1. budgets on the raw text (characters, control characters);
2. tokens: budget, balanced brackets and their depth, so deep nesting is
   refused before the (recursive) parser sees it;
3. parse with :class:`~trace_core.query.gate.dialect.GateDuckDB` (calls keep
   their written names); more than one statement is refused;
4. the policy rules of :data:`trace_core.query.gate.rules.RULES`, in order;
5. regenerate the SQL (no comments) and parse it again: the regenerated text
   is what executes, so it must parse to exactly the tree the rules checked
   (same node classes, names, literals and flags). Anything else means the
   generator changed the query, and it is refused rather than run changed.

The whole check runs under a CPU budget (``GateLimits.max_cpu_s``); every
step is linear in the size of the text, and the budget turns any case that is
not into a refusal instead of a busy service.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import time
from collections.abc import Collection, Iterator
from typing import Any

import sqlglot
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import expressions as exp

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
_OPEN = {sqlglot.TokenType.L_PAREN, sqlglot.TokenType.L_BRACKET, sqlglot.TokenType.L_BRACE}
_CLOSE = {sqlglot.TokenType.R_PAREN, sqlglot.TokenType.R_BRACKET, sqlglot.TokenType.R_BRACE}
_PAIRS = {
    sqlglot.TokenType.L_PAREN: sqlglot.TokenType.R_PAREN,
    sqlglot.TokenType.L_BRACKET: sqlglot.TokenType.R_BRACKET,
    sqlglot.TokenType.L_BRACE: sqlglot.TokenType.R_BRACE,
}


class GateLimits(BaseModel):
    """Size and nesting budgets. Defaults fit analytics queries with room to spare."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_chars: int = Field(default=100_000, ge=1, description="Characters of SQL text.")
    max_tokens: int = Field(default=20_000, ge=1, description="Lexical tokens.")
    max_paren_depth: int = Field(default=32, ge=1, description="Nested (), [] and {}.")
    max_depth: int = Field(default=160, ge=8, description="Depth of the parsed tree.")
    max_nodes: int = Field(default=50_000, ge=1, description="Nodes of the parsed tree.")
    max_cpu_s: float = Field(default=2.0, gt=0, description="CPU seconds the gate may spend on one query.")


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
    budget = _Budget(limits.max_cpu_s)
    root = _parse(sql, limits)
    budget.check("parsing")
    ctx = rule_context.Context(relations=granted, limits=limits, budget=budget.check)
    _apply(root, ctx)
    regenerated = _generate(root)
    # The regenerated text is what runs: it must mean exactly what was checked.
    again = _parse(regenerated, limits)
    budget.check("re-parsing")
    if not _same_tree(root, again):
        raise errors.QueryRejectedError(
            "the query uses a construct the gate cannot reproduce faithfully; rewrite it in plainer SQL",
            reason="forbidden_syntax",
        )
    budget.check("comparing")
    return GatedQuery(sql=regenerated, relations_used=frozenset(ctx.relations_used))


class _Budget:
    """CPU time of this thread since the check began (other threads' load does not count against a query)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._start = time.thread_time()

    def check(self, step: str) -> None:
        spent = time.thread_time() - self._start
        if spent > self._seconds:
            raise errors.QueryRejectedError(
                f"checking the query took more than the gate's budget of {self._seconds:g} s of CPU "
                f"(stopped while {step}); make it smaller, e.g. fewer CTEs or shorter expressions",
                reason="too_long",
            )


def _same_tree(left: exp.Expr, right: exp.Expr) -> bool:
    """Equal node classes, arguments and values, in order; comments are not part of the tree."""
    end = object()
    return all(a == b for a, b in itertools.zip_longest(_shape(left), _shape(right), fillvalue=end))


def _shape(root: exp.Expr) -> Iterator[tuple[Any, ...]]:
    """A prefix encoding of the tree, walked with a stack (a deep tree cannot exhaust Python's)."""
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, exp.Expr):
            present = sorted(k for k, v in item.args.items() if v is not None and v != [])
            yield ("node", type(item).__name__, tuple(present))
            stack.extend(item.args[k] for k in reversed(present))
        elif isinstance(item, list):
            yield ("list", len(item))
            stack.extend(reversed(item))
        else:
            yield ("value", type(item).__name__, item)


def _apply(root: exp.Expr, ctx: rule_context.Context) -> None:
    try:
        for rule in rules.RULES:
            rule(root, ctx)
            ctx.budget(f"applying the {rule.__name__} rule")
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
    tokens = _check_tokens(sql, limits)
    try:  # the tokens already checked, so the text is tokenized once
        statements = _DIALECT().parser(error_level=sqlglot.ErrorLevel.RAISE).parse(tokens, sql)
    except RecursionError as exc:
        raise errors.QueryRejectedError("the query is nested too deeply", reason="too_deep") from exc
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        raise errors.QueryRejectedError(f"the query is not valid SQL: {_first_line(exc)}", reason="syntax") from exc
    except Exception as exc:  # sqlglot fails on some malformed text with IndexError and the like
        raise errors.QueryRejectedError(
            f"the query is not valid SQL: the parser could not read it ({type(exc).__name__})", reason="syntax"
        ) from exc
    # A trailing ';' followed by a comment parses as an empty statement: nothing to run, dropped.
    real = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
    if not real:
        raise errors.QueryRejectedError("the query is empty", reason="syntax")
    if len(real) > 1:
        raise errors.QueryRejectedError(
            f"the text holds {len(real)} statements; send exactly one SELECT query", reason="multiple_statements"
        )
    return real[0]


def _check_tokens(sql: str, limits: GateLimits) -> list[sqlglot.Token]:
    try:
        tokens = _DIALECT().tokenize(sql)
    except sqlglot.errors.TokenError as exc:
        raise errors.QueryRejectedError(f"the query is not valid SQL: {_first_line(exc)}", reason="syntax") from exc
    if len(tokens) > limits.max_tokens:
        raise errors.QueryRejectedError(
            f"the query has {len(tokens)} tokens; the limit is {limits.max_tokens}", reason="too_long"
        )
    # Brackets must pair up: sqlglot's parser crashes on some unbalanced text (`select [1][2[`).
    open_brackets: list[sqlglot.Token] = []
    for token in tokens:
        if token.token_type in _OPEN:
            open_brackets.append(token)
            if len(open_brackets) > limits.max_paren_depth:
                raise errors.QueryRejectedError(
                    f"the query nests brackets more than {limits.max_paren_depth} deep", reason="too_deep"
                )
        elif token.token_type in _CLOSE:
            if not open_brackets or _PAIRS[open_brackets[-1].token_type] != token.token_type:
                raise errors.QueryRejectedError(
                    f"the query is not valid SQL: {token.text!r} at line {token.line}, column {token.col} "
                    "closes no matching bracket",
                    reason="syntax",
                )
            open_brackets.pop()
    if open_brackets:
        first = open_brackets[-1]
        raise errors.QueryRejectedError(
            f"the query is not valid SQL: {first.text!r} at line {first.line}, column {first.col} is never closed",
            reason="syntax",
        )
    return tokens


def _generate(root: exp.Expr) -> str:
    try:
        return root.sql(dialect=_DIALECT, comments=False)
    except RecursionError as exc:
        raise errors.QueryRejectedError("the query is nested too deeply", reason="too_deep") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
