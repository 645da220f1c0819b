"""Benchmarks (not tests): `python -m bench.<name>`; figures are recorded in docs/benchmarks.md."""
