-- Buffered dataset sinks (invariant 7, and invariant 11 for alert events).
-- A producer stages a batch of records here and, in the same transaction, writes
-- an outbox row whose message is only a pointer ({batch_id, sink}). The sink
-- Lambda drains the `trace-sink` queue and applies each batch in one transaction:
-- every row or none. Rows are unique per dedupe key, so duplicate messages,
-- duplicate publishes and task retries never add a row twice.
-- See docs/specs/sink.md and docs/decisions/0901-buffered-sink.md.

-- ---------------------------------------------------------------- staged batches (the buffer)
CREATE TABLE state.sink_batches (
    batch_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sink         text NOT NULL CHECK (sink ~ '^[a-z][a-z0-9_]{0,62}$'),
    -- Tenant attribution comes from the trusted publisher, never from a record.
    org_id       uuid REFERENCES state.orgs (org_id),
    -- Provenance only: dedupe keys never include the attempt.
    task_id      uuid,
    attempt      integer,
    -- The validated, normalised records (what the sink validates again and writes).
    records      jsonb NOT NULL CHECK (jsonb_typeof(records) = 'array'),
    record_count integer NOT NULL CHECK (record_count >= 0),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rejected', 'applied')),
    -- How often the sink refused the batch, and why the last time (a rejected batch
    -- stays re-appliable: repair the records, then redrive its message from the DLQ).
    rejections   integer NOT NULL DEFAULT 0 CHECK (rejections >= 0),
    last_error   text,
    inserted     integer CHECK (inserted >= 0),
    duplicates   integer CHECK (duplicates >= 0),
    applied_by_message text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    CHECK ((status = 'applied') = (applied_at IS NOT NULL)),
    CHECK ((task_id IS NULL) = (attempt IS NULL)),
    CONSTRAINT sink_batches_attempt_fk FOREIGN KEY (task_id, attempt)
        REFERENCES state.task_attempts (task_id, attempt)
);
CREATE INDEX sink_batches_open ON state.sink_batches (created_at) WHERE status <> 'applied';
CREATE INDEX sink_batches_task ON state.sink_batches (task_id) WHERE task_id IS NOT NULL;

-- ---------------------------------------------------------------- alert events (typed sink)
-- One row per (org, dedupe key) however often evaluation or delivery is retried.
-- alert_definition_id has no foreign key yet: alert definitions arrive with alerting.
CREATE TABLE data.alert_events (
    alert_event_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id              uuid,
    dedupe_key          text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 512),
    alert_definition_id uuid NOT NULL,
    event_time          timestamptz NOT NULL,
    severity            text CHECK (severity IN ('info', 'warning', 'critical')),
    chain_id            bigint CHECK (chain_id > 0),
    block_number        bigint CHECK (block_number >= 0),
    block_hash          text CHECK (block_hash ~ '^0x[0-9a-f]{64}$'),
    tx_hash             text CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    source_dataset_uuid uuid,
    partition_key       text,
    cursor_value        text,
    payload             jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object'),
    batch_id            uuid NOT NULL,
    producer_task_id    uuid,
    producer_attempt    integer,
    message_id          text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    -- NULLS NOT DISTINCT: platform events (no org) dedupe among themselves too.
    CONSTRAINT alert_events_dedupe UNIQUE NULLS NOT DISTINCT (org_id, dedupe_key)
);
CREATE INDEX alert_events_definition_time ON data.alert_events (alert_definition_id, event_time);
CREATE INDEX alert_events_received ON data.alert_events (received_at);

-- ---------------------------------------------------------------- other buffered datasets (generic sink)
-- Any other sink name lands here as a JSON object per row, unique per (sink, org, dedupe key).
CREATE TABLE data.sink_outputs (
    output_id   bigserial PRIMARY KEY,
    sink        text NOT NULL CHECK (sink ~ '^[a-z][a-z0-9_]{0,62}$' AND sink <> 'alert_events'),
    org_id      uuid,
    dedupe_key  text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 512),
    record      jsonb NOT NULL CHECK (jsonb_typeof(record) = 'object'),
    batch_id    uuid NOT NULL,
    message_id  text,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sink_outputs_dedupe UNIQUE NULLS NOT DISTINCT (sink, org_id, dedupe_key)
);
CREATE INDEX sink_outputs_sink_received ON data.sink_outputs (sink, received_at);
