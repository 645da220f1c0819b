"""Stored analytics: parameterised SQL templates run through the Query Service, exact uint256 results.

``run(name, params, query=..., coverage=...)`` runs one (see :mod:`trace_core.analytics.run`), ``catalog`` lists
them, ``plots`` draws them and ``report.write_report(results, dir)`` writes an HTML report.
Spec: docs/specs/analytics.md.
"""
