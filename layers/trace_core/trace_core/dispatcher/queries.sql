-- Named queries of the dispatcher core (loaded by queries.py; `-- name:` starts a block).
-- Every statement that changes a task locks its state.tasks row before any
-- state.task_attempts row, so concurrent calls cannot deadlock each other.
-- Time is always the database's now(): one clock for every worker and reaper.

-- name: create_tasks
-- Insert new tasks and their first wake-up in one statement. A conflicting
-- idempotency key inserts nothing (the caller then compares with the existing task).
-- Returns only the columns the database sets; the caller has the rest.
WITH wanted AS (
    SELECT *
      FROM jsonb_to_recordset(%(tasks)s::jsonb) AS w(
           ord int, task_id uuid, job_id uuid, operator text, payload jsonb, idempotency_key text,
           queue text, max_attempts int, backoff_base_ms int)
), created AS (
    INSERT INTO state.tasks (task_id, job_id, operator, payload, idempotency_key, queue, max_attempts, backoff_base_ms)
    SELECT task_id, job_id, operator, payload, idempotency_key, queue, max_attempts, backoff_base_ms
      FROM wanted
     ORDER BY ord
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING task_id, queue, status, attempt, lease_expires_at, not_before, outputs, last_error,
              created_at, updated_at, finished_at
), woken AS (
    INSERT INTO state.outbox (queue, payload)
    SELECT queue, jsonb_build_object('task_id', task_id, 'attempt', attempt) FROM created
)
SELECT task_id, status, attempt, lease_expires_at, not_before, outputs, last_error, created_at, updated_at,
       finished_at
  FROM created;

-- name: tasks_by_idempotency_key
SELECT * FROM state.tasks WHERE idempotency_key = ANY(%(keys)s::text[]);

-- name: claim
-- Only a queued, due task: concurrent claimers serialise on the row lock and
-- re-check the WHERE clause, so exactly one of them wins (one live lease).
WITH leased AS (
    UPDATE state.tasks
       SET status = 'running',
           attempt = attempt + 1,
           lease_expires_at = now() + %(lease_seconds)s * interval '1 second',
           updated_at = now()
     WHERE task_id = %(task_id)s AND status = 'queued' AND not_before <= now()
    RETURNING *
), started AS (
    INSERT INTO state.task_attempts (task_id, attempt, worker_id, lease_expires_at)
    SELECT task_id, attempt, %(worker_id)s, lease_expires_at FROM leased
    RETURNING task_id, lease_token
)
SELECT leased.*, started.lease_token FROM leased JOIN started USING (task_id);

-- name: claim_next
-- The oldest due tasks in index order (tasks_runnable: no sort of the backlog),
-- skipping rows others hold. The lease token is drawn here so the attempt insert
-- needs no join back to the updated rows.
WITH due AS (
    SELECT task_id, gen_random_uuid() AS lease_token
      FROM state.tasks
     WHERE status = 'queued' AND not_before <= now()
       AND (%(operators)s::text[] IS NULL OR operator = ANY(%(operators)s::text[]))
       AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
     ORDER BY not_before, task_id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE state.tasks t
       SET status = 'running',
           attempt = t.attempt + 1,
           lease_expires_at = now() + %(lease_seconds)s * interval '1 second',
           updated_at = now()
      FROM due
     WHERE t.task_id = due.task_id
    RETURNING t.*, due.lease_token
), started AS (
    INSERT INTO state.task_attempts (task_id, attempt, worker_id, lease_expires_at, lease_token)
    SELECT task_id, attempt, %(worker_id)s, lease_expires_at, lease_token FROM leased
)
SELECT * FROM leased ORDER BY not_before, task_id;

-- name: heartbeat
-- Fenced in the WHERE clause: the live attempt, its own token, an unexpired lease.
WITH beat AS (
    UPDATE state.tasks t
       SET lease_expires_at = now() + %(lease_seconds)s * interval '1 second',
           updated_at = now()
      FROM state.task_attempts a
     WHERE t.task_id = %(task_id)s AND t.status = 'running' AND t.attempt = %(attempt)s
       AND t.lease_expires_at > now()
       AND a.task_id = t.task_id AND a.attempt = t.attempt
       AND a.lease_token = %(lease_token)s AND a.finished_at IS NULL
    RETURNING t.*
), extended AS (
    UPDATE state.task_attempts a
       SET heartbeat_at = now(), lease_expires_at = beat.lease_expires_at
      FROM beat
     WHERE a.task_id = beat.task_id AND a.attempt = beat.attempt
    RETURNING a.task_id, a.lease_token
)
SELECT beat.*, extended.lease_token FROM beat JOIN extended USING (task_id);

-- name: complete_succeeded
-- The happy path of successful completions in one statement, fenced in the
-- WHERE clause exactly as lifecycle.fence is (the live attempt, its own token,
-- not ended, lease unexpired). Rows are locked in id order first, as the
-- snapshots query does, so batches and heartbeats cannot deadlock. An item it
-- leaves out (refused, or a repeat) is decided by the core in Python. It returns
-- only the ids: the worker needs no more, and complete() reads its one task back.
WITH x AS (
    SELECT *
      FROM jsonb_to_recordset(%(items)s::jsonb) AS x(task_id uuid, attempt int, lease_token uuid, outputs jsonb)
), locked AS MATERIALIZED (
    -- The ids as an array, not a join with x: the planner sizes `= ANY` by the array and reads the
    -- primary key; joined with the function scan it guessed 100 rows and scanned the whole table.
    SELECT t.task_id
      FROM state.tasks t
     WHERE t.task_id = ANY(%(ids)s::uuid[])
     ORDER BY t.task_id
       FOR UPDATE OF t
), moved AS (
    UPDATE state.tasks t
       SET status = 'completed',
           lease_expires_at = NULL,
           outputs = coalesce(x.outputs, '{}'::jsonb),
           last_error = NULL,
           finished_at = now(),
           updated_at = now()
      FROM locked, x, state.task_attempts a
     WHERE t.task_id = locked.task_id AND x.task_id = t.task_id
       AND t.status = 'running' AND t.attempt = x.attempt AND t.lease_expires_at > now()
       AND a.task_id = t.task_id AND a.attempt = t.attempt
       AND a.lease_token = x.lease_token AND a.finished_at IS NULL
    RETURNING t.task_id, t.attempt
), ended AS (
    UPDATE state.task_attempts a
       SET finished_at = now(), outcome = 'succeeded', error = NULL
      FROM moved
     WHERE a.task_id = moved.task_id AND a.attempt = moved.attempt AND a.finished_at IS NULL
)
SELECT task_id FROM moved;

-- name: snapshots
-- Lock tasks (in id order, so batches cannot deadlock) and read their current attempt.
SELECT t.*, a.lease_token AS live_token, a.outcome AS attempt_outcome, a.error AS attempt_error,
       now() AS db_now
  FROM state.tasks t
  LEFT JOIN state.task_attempts a ON a.task_id = t.task_id AND a.attempt = t.attempt
 WHERE t.task_id = ANY(%(task_ids)s::uuid[])
 ORDER BY t.task_id
   FOR UPDATE OF t;

-- name: expired_snapshots
-- The reaper's batch. SKIP LOCKED: two reapers take disjoint rows, and a task
-- whose owner is completing or heartbeating right now is left to that call.
SELECT t.*, a.lease_token AS live_token, a.outcome AS attempt_outcome, a.error AS attempt_error,
       now() AS db_now
  FROM state.tasks t
  JOIN state.task_attempts a ON a.task_id = t.task_id AND a.attempt = t.attempt
 WHERE t.status = 'running' AND t.lease_expires_at <= now()
 ORDER BY t.lease_expires_at, t.task_id
 LIMIT %(limit)s
   FOR UPDATE OF t SKIP LOCKED;

-- name: apply_transitions
-- Write decided transitions: the task row, the attempt's outcome, the dead-letter
-- record and the retry's wake-up (published once due), all in one statement.
WITH x AS (
    SELECT *
      FROM jsonb_to_recordset(%(transitions)s::jsonb) AS x(
           task_id uuid, attempt int, status text, outcome text, error text, outputs jsonb, delay_ms bigint)
), moved AS (
    UPDATE state.tasks t
       SET status = x.status,
           lease_expires_at = NULL,
           outputs = CASE WHEN x.status = 'completed' THEN coalesce(x.outputs, '{}'::jsonb) ELSE t.outputs END,
           last_error = x.error,
           not_before = CASE WHEN x.status = 'queued'
                             THEN now() + x.delay_ms * interval '1 millisecond'
                             ELSE t.not_before END,
           finished_at = CASE WHEN x.status IN ('completed', 'failed', 'dead') THEN now() END,
           updated_at = now()
      FROM x
     WHERE t.task_id = x.task_id AND t.attempt = x.attempt AND t.status = 'running'
    RETURNING t.*, x.outcome
), ended AS (
    UPDATE state.task_attempts a
       SET finished_at = now(), outcome = moved.outcome, error = moved.last_error
      FROM moved
     WHERE a.task_id = moved.task_id AND a.attempt = moved.attempt AND a.finished_at IS NULL
), dead AS (
    INSERT INTO state.dead_tasks (task_id, attempts, last_error)
    SELECT task_id, attempt, last_error FROM moved WHERE status = 'dead'
), woken AS (
    INSERT INTO state.outbox (queue, payload, not_before)
    SELECT queue, jsonb_build_object('task_id', task_id, 'attempt', attempt), not_before
      FROM moved WHERE status = 'queued'
)
SELECT * FROM moved;

-- name: get_task
SELECT *, now() AS db_now FROM state.tasks WHERE task_id = %(task_id)s;

-- name: list_tasks
SELECT *
  FROM state.tasks
 WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
 ORDER BY created_at DESC, task_id
 LIMIT %(limit)s;

-- name: attempts
SELECT attempt, worker_id, lease_token, claimed_at, heartbeat_at, lease_expires_at, finished_at, outcome, error
  FROM state.task_attempts
 WHERE task_id = %(task_id)s
 ORDER BY attempt;

-- name: outbox_pending
-- SKIP LOCKED: several drainers share the backlog; each row stays locked
-- until its publish is recorded (or the drainer dies and the lock goes with it).
SELECT outbox_id, queue, payload
  FROM state.outbox
 WHERE published_at IS NULL AND not_before <= now()
 ORDER BY not_before, outbox_id
 LIMIT %(batch_size)s
   FOR UPDATE SKIP LOCKED;

-- name: outbox_published
UPDATE state.outbox
   SET published_at = now(), publish_attempts = publish_attempts + 1, last_error = NULL
 WHERE outbox_id = ANY(%(ids)s::bigint[]) AND published_at IS NULL;

-- name: outbox_failed
-- A queue that rejects the publish backs off (1 s doubling to 5 min), so it
-- cannot hold the head of the backlog and starve the other queues.
UPDATE state.outbox
   SET publish_attempts = publish_attempts + 1,
       last_error = %(error)s,
       not_before = now() + least(power(2, publish_attempts), 300) * interval '1 second'
 WHERE outbox_id = ANY(%(ids)s::bigint[]);

-- name: outbox_oldest_pending_age
SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age
FROM state.outbox WHERE published_at IS NULL AND not_before <= now();
