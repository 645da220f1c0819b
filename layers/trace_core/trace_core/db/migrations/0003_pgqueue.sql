-- pgqueue: the Postgres QueueDriver's tables (Lite's default wake-up channel).
-- A message is only a wake-up pointer (invariant 1); Postgres state stays the truth.
-- Semantics follow SQS: a received message is invisible until visible_at; each
-- receive bumps receive_count; a message received max-receives times and not
-- deleted moves to state.queue_dead on its next receive (like an SQS redrive).

CREATE TABLE state.queue_messages (
    message_id    bigserial PRIMARY KEY,
    queue         text NOT NULL CHECK (queue <> ''),
    body          jsonb NOT NULL,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    visible_at    timestamptz NOT NULL DEFAULT now(),
    receive_count integer NOT NULL DEFAULT 0 CHECK (receive_count >= 0),
    -- The current delivery's receipt: ack/extend with an older one is a no-op.
    receipt       uuid
);
-- Receives scan "visible now" in one queue, oldest first.
CREATE INDEX queue_messages_visible ON state.queue_messages (queue, visible_at);

CREATE TABLE state.queue_dead (
    message_id    bigint PRIMARY KEY,
    queue         text NOT NULL,
    body          jsonb NOT NULL,
    enqueued_at   timestamptz NOT NULL,
    receive_count integer NOT NULL,
    reason        text NOT NULL,
    died_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queue_dead_queue ON state.queue_dead (queue, died_at);

-- Wake the outbox drainer as soon as an intent commits, whoever wrote it (API,
-- worker retry, reaper), so wake-up latency is not the drainer's timer period.
-- Statement-level, and NOTIFY folds identical notifications in one transaction:
-- one notification per committing transaction at most.
CREATE FUNCTION state.notify_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trace_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON state.outbox
FOR EACH STATEMENT EXECUTE FUNCTION state.notify_outbox();
