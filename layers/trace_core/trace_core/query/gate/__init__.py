"""The SQL gate: accepts one read-only SELECT over granted relations, rejects everything else.

``check(sql, relations=..., limits=...)`` returns the regenerated SQL (the only
text that may run) and the granted relations it reads, or raises
:class:`~trace_core.query.errors.QueryRejectedError` with a reason a user can act on.
"""

from trace_core.query.gate.gate import GatedQuery, GateLimits, check

__all__ = ["GateLimits", "GatedQuery", "check"]
