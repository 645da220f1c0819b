-- Named queries of the buffered dataset sink (loaded by trace_core.db.queries).
-- Parameters are always bound (%(name)s). Rows go in as one jsonb array per
-- statement, expanded by jsonb_to_recordset: one round trip per batch.

-- name: stage_batch
INSERT INTO state.sink_batches (sink, org_id, task_id, attempt, records, record_count)
VALUES (%(sink)s, %(org_id)s, %(task_id)s, %(attempt)s, %(records)s, %(record_count)s)
RETURNING batch_id;

-- name: enqueue_pointer
-- The wake-up goes through the outbox, in the staging transaction (invariant 2).
INSERT INTO state.outbox (queue, payload)
VALUES (%(queue)s, %(payload)s);

-- name: lock_batch
-- Serialises deliveries of the same message (or of two messages for one batch):
-- the second waits for the first to commit, then finds the batch applied.
SELECT batch_id, sink, org_id, task_id, attempt, records, record_count, status, rejections, last_error,
       created_at, applied_at
FROM state.sink_batches
WHERE batch_id = %(batch_id)s
FOR UPDATE;

-- name: get_batch
SELECT batch_id, sink, org_id, task_id, attempt, records, record_count, status, rejections, last_error,
       created_at, applied_at
FROM state.sink_batches
WHERE batch_id = %(batch_id)s;

-- name: insert_alert_events
INSERT INTO data.alert_events (
    org_id, dedupe_key, alert_definition_id, event_time, severity, chain_id, block_number, block_hash, tx_hash,
    source_dataset_uuid, partition_key, cursor_value, payload, batch_id, producer_task_id, producer_attempt,
    message_id)
SELECT %(org_id)s, r.dedupe_key, r.alert_definition_id, r.event_time, r.severity, r.chain_id, r.block_number,
       r.block_hash, r.tx_hash, r.source_dataset_uuid, r.partition_key, r.cursor_value,
       coalesce(r.payload, '{}'::jsonb), %(batch_id)s, %(task_id)s, %(attempt)s, %(message_id)s
FROM jsonb_to_recordset(%(rows)s) AS r(
    dedupe_key text, alert_definition_id uuid, event_time timestamptz, severity text, chain_id bigint,
    block_number bigint, block_hash text, tx_hash text, source_dataset_uuid uuid, partition_key text,
    cursor_value text, payload jsonb)
ON CONFLICT ON CONSTRAINT alert_events_dedupe DO NOTHING;

-- name: insert_sink_outputs
INSERT INTO data.sink_outputs (sink, org_id, dedupe_key, record, batch_id, message_id)
SELECT %(sink)s, %(org_id)s, r.dedupe_key, r.record, %(batch_id)s, %(message_id)s
FROM jsonb_to_recordset(%(rows)s) AS r(dedupe_key text, record jsonb)
ON CONFLICT ON CONSTRAINT sink_outputs_dedupe DO NOTHING;

-- name: mark_applied
UPDATE state.sink_batches
   SET status = 'applied', applied_at = now(), inserted = %(inserted)s, duplicates = %(duplicates)s,
       applied_by_message = %(message_id)s, last_error = NULL
 WHERE batch_id = %(batch_id)s;

-- name: mark_rejected
-- A rejection writes no data row; it only says why on the batch (and how often).
UPDATE state.sink_batches
   SET status = 'rejected', rejections = rejections + 1, last_error = %(error)s
 WHERE batch_id = %(batch_id)s AND status <> 'applied';

-- name: requeue
-- A new wake-up for batches not yet applied (replay after a repair or a lost DLQ message).
INSERT INTO state.outbox (queue, payload)
SELECT %(queue)s, jsonb_build_object('batch_id', batch_id::text, 'sink', sink)
FROM state.sink_batches
WHERE batch_id = ANY(%(batch_ids)s::uuid[]) AND status <> 'applied'
RETURNING (payload->>'batch_id')::uuid AS batch_id;

-- name: batch_counts
SELECT sink, status, count(*) AS batches, coalesce(sum(record_count), 0) AS records, min(created_at) AS oldest
FROM state.sink_batches
GROUP BY sink, status
ORDER BY sink, status;

-- name: rejected_batches
SELECT batch_id, sink, rejections, last_error, created_at
FROM state.sink_batches
WHERE status = 'rejected'
ORDER BY created_at DESC
LIMIT %(limit)s;
