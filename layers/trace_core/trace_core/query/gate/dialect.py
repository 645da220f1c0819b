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

The generator must write back the tree it was given, never an equivalent the
target engine might need: DuckDB's stock generator rewrites a multi-argument
``DISTINCT`` (``count(DISTINCT a, b)``, ``string_agg(DISTINCT x, ',')``) into a
``CASE`` over a row, which is a different query. The gate proves the text it
returns parses back to the tree it checked (see ``gate.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import expressions as exp
from sqlglot import generator
from sqlglot.dialects import duckdb as sqlglot_duckdb
from sqlglot.generators import duckdb as duckdb_generator
from sqlglot.parsers import duckdb as duckdb_parser

# Calls with their own grammar (keywords inside the parentheses), kept typed.
GRAMMAR_CALLS: frozenset[str] = frozenset({"CAST", "TRY_CAST", "EXTRACT", "TRIM", "SUBSTRING", "POSITION"})


class _Parser(duckdb_parser.DuckDBParser):
    FUNCTIONS: ClassVar[dict[str, Any]] = {}  # no typed builders: every call is Anonymous
    FUNCTION_PARSERS: ClassVar[dict[str, Any]] = {
        name: parse for name, parse in duckdb_parser.DuckDBParser.FUNCTION_PARSERS.items() if name in GRAMMAR_CALLS
    }


class _Generator(duckdb_generator.DuckDBGenerator):
    # Write DISTINCT with several arguments as written; DuckDB decides what it means.
    MULTI_ARG_DISTINCT = True
    # `a ^@ b` parses as StartsWith; write it back as the operator, not as a call that parses differently.
    TRANSFORMS: ClassVar[dict[Any, Any]] = {
        **duckdb_generator.DuckDBGenerator.TRANSFORMS,
        exp.StartsWith: lambda self, e: self.binary(e, "^@"),
    }

    # DuckDB's own names for its 128-bit integers (sqlglot writes the aliases INT128 / UINT128).
    TYPE_MAPPING: ClassVar[dict[Any, str]] = {
        **duckdb_generator.DuckDBGenerator.TYPE_MAPPING,
        exp.DataType.Type.INT128: "HUGEINT",
        exp.DataType.Type.UINT128: "UHUGEINT",
    }

    def withingroup_sql(self, expression: exp.WithinGroup) -> str:
        # DuckDB's generator moves WITHIN GROUP's ORDER BY into the call's arguments, which is another
        # query for percentile_cont/percentile_disc; write the clause as it was written.
        return generator.Generator.withingroup_sql(self, expression)


class GateDuckDB(sqlglot_duckdb.DuckDB):
    """The dialect the gate parses and regenerates with (pass the class as ``dialect=``)."""

    # Calls keep the case they were written in, so the regenerated tree equals the checked one.
    NORMALIZE_FUNCTIONS = False

    Parser = _Parser
    Generator = _Generator
