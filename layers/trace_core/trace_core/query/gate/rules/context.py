"""What every gate rule sees besides the tree: the granted relations, the budgets, and what it found."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from sqlglot import expressions as exp

from trace_core.query import errors

if TYPE_CHECKING:
    from trace_core.query.gate.gate import GateLimits

# A relation or CTE name: a plain ASCII identifier (DuckDB folds ASCII case, quoted or not).
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Prefixes of DuckDB's system catalogs: never a relation name a caller may grant.
RESERVED_PREFIXES: tuple[str, ...] = ("sqlite_", "duckdb_", "pg_", "pragma_", "information_schema")


@dataclasses.dataclass
class Context:
    """Input and output of one pass of the rules over one tree."""

    relations: frozenset[str]
    limits: GateLimits
    relations_used: set[str] = dataclasses.field(default_factory=set)
    # Raises once the gate's CPU budget is spent; rules with loops over scopes call it as they go.
    budget: Callable[[str], None] = lambda step: None


def fold(name: str) -> str:
    """DuckDB's identifier folding: ASCII letters to lower case, everything else as it is."""
    return "".join(c.lower() if c.isascii() else c for c in name)


def granted_names(relations: Collection[str]) -> frozenset[str]:
    """Validate and fold the caller's granted relation names."""
    if isinstance(relations, str):
        raise errors.InvalidRelationError(
            "relations must be a collection of names, not one string", relation=relations, expected="list of names"
        )
    folded = set()
    for name in relations:
        if not isinstance(name, str) or not IDENTIFIER.match(fold(name)):
            raise errors.InvalidRelationError(
                f"granted relation {name!r} is not a plain identifier ([a-z_][a-z0-9_]*)",
                relation=name,
                expected="[a-z_][a-z0-9_]*",
            )
        if fold(name).startswith(RESERVED_PREFIXES):
            raise errors.InvalidRelationError(
                f"granted relation {name!r} collides with a DuckDB system catalog name",
                relation=name,
                expected="a name not starting with " + ", ".join(RESERVED_PREFIXES),
            )
        folded.add(fold(name))
    return frozenset(folded)


def snippet(node: exp.Expr) -> str:
    """The node as SQL, short enough for an error message."""
    try:
        text = node.sql(dialect="duckdb", comments=False)
    except Exception:  # noqa: BLE001 - a message helper must not fail the verdict it explains
        text = type(node).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def reject(message: str, reason: errors.RejectReason, node: exp.Expr | None = None) -> errors.QueryRejectedError:
    """The error a rule raises."""
    return errors.QueryRejectedError(message, reason=reason, node=snippet(node) if node is not None else None)
