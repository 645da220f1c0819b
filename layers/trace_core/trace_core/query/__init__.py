"""The query sandbox: untrusted SQL over granted relations only (invariant 8).

- :mod:`trace_core.query.gate`: the SQL gate (sqlglot): one read-only SELECT,
  allowlisted functions, granted relations; returns the regenerated SQL to run.
- :mod:`trace_core.query.attach`: trusted attach: granted, pinned Parquet files
  or Arrow tables become relations with fixed names before any user SQL runs.
- :mod:`trace_core.query.engine`: hardened DuckDB in a pool of sandboxed worker
  processes (external access off, configuration locked, memory/CPU/time/row limits).

The Query Service (``trace_core.query.service``) calls ``gate.check`` then
``Engine.execute``. The policy is specified in ``docs/specs/query_sql_gating.md``.
"""
