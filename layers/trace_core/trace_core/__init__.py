"""Trace core: the shared library behind every Lambda, Fargate service and the Lite CLI."""

__version__ = "0.1.0"
