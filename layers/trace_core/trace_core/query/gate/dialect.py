"""DuckDB as sqlglot reads it, minus sqlglot's function typing: every call keeps the name it was written with.

sqlglot's DuckDB dialect turns known calls into typed nodes (``read_csv(...)``
becomes ``ReadCSV`` whose ``.name`` is the *path*; ``range(10)`` becomes
``GenerateSeries``) and regenerates them under other names. A gate that checks
names must check the name DuckDB will resolve, so this dialect parses every
``name(args)`` as ``exp.Anonymous`` with the name as written, and regenerates it
unchanged. What stays typed is grammar that is not a plain call: ``CAST``,
``TRY_CAST``, ``EXTRACT``, ``TRIM``, ``SUBSTRING``, ``POSITION``, ``CASE``,
``IF``, literals for lists/structs/maps, and the ``CURRENT_*`` keywords; the
syntax rule lists each of them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot.dialects import duckdb as sqlglot_duckdb
from sqlglot.parsers import duckdb as duckdb_parser

# Calls with their own grammar (keywords inside the parentheses), kept typed.
GRAMMAR_CALLS: frozenset[str] = frozenset({"CAST", "TRY_CAST", "EXTRACT", "TRIM", "SUBSTRING", "POSITION"})


class _Parser(duckdb_parser.DuckDBParser):
    FUNCTIONS: ClassVar[dict[str, Any]] = {}  # no typed builders: every call is Anonymous
    FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
        name: parse for name, parse in duckdb_parser.DuckDBParser.FUNCTION_PARSERS.items() if name in GRAMMAR_CALLS
    }


class GateDuckDB(sqlglot_duckdb.DuckDB):
    """The dialect the gate parses and regenerates with (pass the class as ``dialect=``)."""

    Parser = _Parser
