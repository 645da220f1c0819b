"""A Python bundle whose module fails at import: an init error."""

raise RuntimeError("broken at import")
