"""Queue drivers: the wake-up channel. Postgres state is the truth; a message is only a pointer."""
