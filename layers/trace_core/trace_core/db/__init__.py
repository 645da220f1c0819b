"""Postgres access: one pool per process, versioned migrations, named queries."""
