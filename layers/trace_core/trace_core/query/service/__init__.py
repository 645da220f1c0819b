"""The Query Service: capability-token-guarded, audited SQL over granted dataset versions.

- ``app``: the FastAPI app (``POST /v1/query``, ``POST /v1/task-query``, ``GET /healthz``).
- ``pipeline``: the use case: token -> body -> gate -> trusted attach -> execute -> shape -> audit.
- ``statuses``: the one map from errors to HTTP status, code and audit decision.
- ``grants`` / ``cache``: trusted attach: grants -> registry -> manifest -> verified local files.
- ``sandbox`` (port) / ``engine`` (adapter over ``trace_core.query``): gate and hardened execution.
- ``audit``, ``attempts``, ``results``, ``wire``, ``client``, ``deps``, ``lite``.

See docs/specs/query_service.md.
"""
