-- Named queries of the pgqueue driver. Each block starts with `-- name: <name>`.

-- name: publish
-- One row per body (the bodies come as one JSON array: one parameter to encode, not
-- one per body); the NOTIFY is delivered when the transaction commits.
WITH inserted AS (
    INSERT INTO state.queue_messages (queue, body)
    SELECT %(queue)s, b FROM jsonb_array_elements(%(bodies)s::jsonb) AS b
    RETURNING 1
)
SELECT count(*) AS published, pg_notify(%(channel)s, %(queue)s) AS notified FROM inserted;

-- name: signal
-- A signal queue's publish: no row, only the notification (delivered when the transaction commits).
SELECT pg_notify(%(channel)s, %(queue)s) AS notified;

-- name: receive
-- Picks visible messages with SKIP LOCKED (concurrent receivers never share
-- one), buries those already received max_receives times, and delivers the
-- rest with a fresh receipt. Returns both kinds, `buried` telling them apart.
WITH picked AS (
    SELECT message_id, receive_count
    FROM state.queue_messages
    WHERE queue = %(queue)s AND visible_at <= now()
    ORDER BY visible_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), dead AS (
    DELETE FROM state.queue_messages m
    USING picked p
    WHERE m.message_id = p.message_id AND p.receive_count >= %(max_receives)s
    RETURNING m.message_id, m.queue, m.body, m.enqueued_at, m.receive_count
), buried AS (
    INSERT INTO state.queue_dead (message_id, queue, body, enqueued_at, receive_count, reason)
    SELECT message_id, queue, body, enqueued_at, receive_count, 'max receives exceeded' FROM dead
    RETURNING message_id, receive_count
), delivered AS (
    UPDATE state.queue_messages m
    SET receive_count = m.receive_count + 1,
        visible_at = now() + make_interval(secs => %(visibility)s),
        receipt = gen_random_uuid()
    FROM picked p
    WHERE m.message_id = p.message_id AND p.receive_count < %(max_receives)s
    RETURNING m.message_id, m.body, m.receipt, m.receive_count
)
SELECT message_id, body, receipt, receive_count, false AS buried FROM delivered
UNION ALL
SELECT message_id, NULL, NULL, receive_count, true FROM buried;

-- name: ack
-- Only the current delivery's receipt deletes: a stale one matches nothing.
DELETE FROM state.queue_messages m
USING unnest(%(ids)s::bigint[], %(receipts)s::uuid[]) AS a (message_id, receipt)
WHERE m.message_id = a.message_id AND m.receipt = a.receipt;

-- name: extend
UPDATE state.queue_messages
SET visible_at = now() + make_interval(secs => %(visibility)s)
WHERE message_id = %(id)s AND receipt = %(receipt)s;

-- name: dead_letter
WITH dead AS (
    DELETE FROM state.queue_messages
    WHERE message_id = %(id)s AND receipt = %(receipt)s
    RETURNING message_id, queue, body, enqueued_at, receive_count
)
INSERT INTO state.queue_dead (message_id, queue, body, enqueued_at, receive_count, reason)
SELECT message_id, queue, body, enqueued_at, receive_count, %(reason)s FROM dead;

-- name: depth
SELECT count(*) FILTER (WHERE visible_at <= now()) AS visible,
       count(*) FILTER (WHERE visible_at > now()) AS in_flight
FROM state.queue_messages
WHERE queue = %(queue)s;

-- name: dead
SELECT message_id, queue, body, receive_count, reason, died_at
FROM state.queue_dead
WHERE queue = %(queue)s
ORDER BY died_at, message_id
LIMIT %(limit)s;
