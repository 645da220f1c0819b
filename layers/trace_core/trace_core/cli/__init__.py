"""The `trace-lite` command line: thin commands over trace_core use cases."""
