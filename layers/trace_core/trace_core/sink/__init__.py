"""Buffered dataset sinks (invariant 7): producers stage batches, the sink Lambda writes them idempotently.

- ``models``: the queue message (a pointer), the record schemas, staged batches, outcomes.
- ``core``: pure rules: which table a sink writes, batch validation and normalisation, duplicates.
- ``store``: the Postgres adapter (``state.sink_batches``, ``data.alert_events``, ``data.sink_outputs``).
- ``service``: ``publish`` (stage a batch and its outbox pointer) and ``consume`` (apply one message).

See docs/specs/sink.md and docs/decisions/0901-buffered-sink.md.
"""
