-- Named queries of the chain sync planner. Parameters are always bound.

-- name: job_by_name
SELECT job_id, name, kind, spec, spec_hash, status FROM state.jobs WHERE name = %(name)s;

-- name: lock_job
SELECT job_id, name, spec, spec_hash, status FROM state.jobs WHERE job_id = %(job_id)s FOR UPDATE;

-- name: insert_job
INSERT INTO state.jobs (name, kind, spec, spec_hash)
VALUES (%(name)s, 'chain_sync', %(spec)s, %(spec_hash)s)
RETURNING job_id;

-- name: update_job_spec
UPDATE state.jobs
SET spec = %(spec)s, spec_hash = %(spec_hash)s,
    status = CASE WHEN status = 'completed' THEN 'active' ELSE status END,
    updated_at = now()
WHERE job_id = %(job_id)s;

-- name: set_job_status
UPDATE state.jobs SET status = %(status)s, updated_at = now()
WHERE job_id = %(job_id)s AND status <> %(status)s
RETURNING job_id;

-- name: upsert_stream
INSERT INTO state.sync_streams (job_id, dataset, dataset_key, chain_id, next_block, cursor, target)
VALUES (%(job_id)s, %(dataset)s, %(dataset_key)s, %(chain_id)s, %(from_block)s, %(from_block)s, %(target)s)
ON CONFLICT (job_id, dataset) DO UPDATE SET target = coalesce(EXCLUDED.target, state.sync_streams.target), updated_at = now();

-- name: streams
SELECT job_id, dataset, dataset_key, chain_id, next_block, cursor, cursor_hash, target, broken_at, last_error
FROM state.sync_streams WHERE job_id = %(job_id)s ORDER BY dataset;

-- name: update_stream
UPDATE state.sync_streams
SET next_block = %(next_block)s, cursor = %(cursor)s, cursor_hash = %(cursor_hash)s, target = %(target)s,
    broken_at = %(broken_at)s, last_error = %(last_error)s, updated_at = now()
WHERE job_id = %(job_id)s AND dataset = %(dataset)s;

-- name: given_up_ranges
-- Scheduled ranges whose task the dispatcher gave up on: they need a fresh task.
SELECT r.range_id, r.dataset, r.range_start, r.range_end, r.generation, r.reschedules, r.task_id
FROM state.sync_ranges r JOIN state.tasks t ON t.task_id = r.task_id
WHERE r.job_id = %(job_id)s AND r.status = 'scheduled' AND t.status IN ('dead', 'failed')
ORDER BY r.range_start, r.dataset;

-- name: inflight_tasks
SELECT count(DISTINCT task_id) AS tasks FROM state.sync_ranges
WHERE job_id = %(job_id)s AND status = 'scheduled';

-- name: insert_range
INSERT INTO state.sync_ranges (job_id, chain_id, dataset_key, dataset, range_start, range_end, generation)
VALUES (%(job_id)s, %(chain_id)s, %(dataset_key)s, %(dataset)s, %(range_start)s, %(range_end)s, %(generation)s)
ON CONFLICT (chain_id, dataset_key, range_start, range_end, generation) DO NOTHING
RETURNING range_id;

-- name: attach_task
UPDATE state.sync_ranges SET task_id = %(task_id)s, reschedules = %(reschedules)s, updated_at = now()
WHERE range_id = %(range_id)s;

-- name: ranges_for_task
SELECT range_id, job_id, dataset, range_start, range_end, generation, status
FROM state.sync_ranges WHERE task_id = %(task_id)s ORDER BY range_id FOR UPDATE;

-- name: commit_range
UPDATE state.sync_ranges
SET status = 'committed', dataset_version = %(dataset_version)s, first_parent_hash = %(first_parent_hash)s,
    last_hash = %(last_hash)s, committed_at = now(), updated_at = now()
WHERE range_id = %(range_id)s AND status = 'scheduled';

-- name: committed_from
SELECT range_id, range_start, range_end, first_parent_hash, last_hash, dataset_version
FROM state.sync_ranges
WHERE job_id = %(job_id)s AND dataset = %(dataset)s AND status = 'committed' AND range_start >= %(from_block)s
ORDER BY range_start;

-- name: committed_below
SELECT range_id, range_start, range_end, first_parent_hash, last_hash, dataset_version, generation
FROM state.sync_ranges
WHERE job_id = %(job_id)s AND dataset = %(dataset)s AND status = 'committed' AND range_end <= %(below)s
ORDER BY range_start DESC;

-- name: supersede_range
UPDATE state.sync_ranges SET status = 'superseded', updated_at = now()
WHERE range_id = %(range_id)s
RETURNING range_start, range_end, generation, dataset_version;

-- name: supersede_version
UPDATE state.dataset_versions SET superseded_at = now()
WHERE dataset_version = %(dataset_version)s AND superseded_at IS NULL;

-- name: stream_progress
SELECT s.dataset, s.dataset_key, s.cursor, s.next_block, s.target, s.broken_at, s.last_error,
       count(*) FILTER (WHERE r.status = 'scheduled' AND coalesce(t.status, 'queued') = 'queued') AS queued,
       count(*) FILTER (WHERE r.status = 'scheduled' AND t.status = 'running') AS running,
       count(*) FILTER (WHERE r.status = 'committed') AS committed,
       count(*) FILTER (WHERE r.status = 'scheduled' AND t.status IN ('failed', 'dead')) AS failed,
       coalesce(sum(r.range_end - r.range_start) FILTER (
           WHERE r.status = 'committed' AND r.committed_at > now() - interval '60 seconds'), 0) AS blocks_last_minute,
       min(r.created_at) AS started_at,
       max(r.committed_at) AS last_commit_at,
       (SELECT t2.last_error FROM state.sync_ranges r2 JOIN state.tasks t2 ON t2.task_id = r2.task_id
        WHERE r2.job_id = s.job_id AND r2.dataset = s.dataset AND t2.last_error IS NOT NULL
          AND r2.status = 'scheduled'
        ORDER BY t2.updated_at DESC LIMIT 1) AS task_error
FROM state.sync_streams s
LEFT JOIN state.sync_ranges r ON r.job_id = s.job_id AND r.dataset = s.dataset
LEFT JOIN state.tasks t ON t.task_id = r.task_id
WHERE s.job_id = %(job_id)s
GROUP BY s.job_id, s.dataset, s.dataset_key, s.cursor, s.next_block, s.target, s.broken_at, s.last_error
ORDER BY s.dataset;

-- name: active_jobs
SELECT job_id, name, spec, status FROM state.jobs WHERE kind = 'chain_sync' AND status = 'active' ORDER BY name;

-- name: all_jobs
SELECT job_id, name, spec, status, updated_at FROM state.jobs WHERE kind = 'chain_sync' ORDER BY name;

-- name: visible_versions
-- The versions a query may see: committed, hash-linked ranges below the stream's cursor.
SELECT r.dataset_key, r.dataset, r.range_start, r.range_end, r.dataset_version, v.manifest_key, v.storage_prefix,
       v.dataset_uuid
FROM state.sync_ranges r
JOIN state.sync_streams s ON s.job_id = r.job_id AND s.dataset = r.dataset
JOIN state.dataset_versions v ON v.dataset_version = r.dataset_version
WHERE r.status = 'committed' AND r.range_end <= s.cursor AND v.superseded_at IS NULL
  AND (%(job_id)s::uuid IS NULL OR r.job_id = %(job_id)s::uuid)
ORDER BY r.dataset_key, r.range_start;

-- name: record_error
UPDATE state.sync_streams SET last_error = %(message)s, updated_at = now() WHERE job_id = %(job_id)s;

-- name: clear_rpc_error
UPDATE state.sync_streams SET last_error = NULL, updated_at = now()
WHERE job_id = %(job_id)s AND last_error LIKE 'rpc: %%';

-- ---------------------------------------------------------------- deleting a job (deletion.py)

-- name: job_tasks_by_status
SELECT status, count(*) AS n FROM state.tasks WHERE job_id = %(job_id)s GROUP BY status;

-- name: job_versions
-- Every dataset version the job's ledger points at or its tasks created, committed or superseded.
SELECT v.dataset_version, v.dataset_uuid, d.key AS dataset_key, v.range_start, v.range_end, v.status,
       v.superseded_at, v.storage_prefix
FROM state.dataset_versions v JOIN state.datasets d USING (dataset_uuid)
WHERE v.dataset_version IN (SELECT dataset_version FROM state.sync_ranges
                            WHERE job_id = %(job_id)s AND dataset_version IS NOT NULL)
   OR v.created_by_task IN (SELECT task_id FROM state.tasks WHERE job_id = %(job_id)s)
ORDER BY d.key, v.range_start, v.dataset_version;

-- name: delete_job_ranges
DELETE FROM state.sync_ranges WHERE job_id = %(job_id)s;

-- name: delete_job_streams
DELETE FROM state.sync_streams WHERE job_id = %(job_id)s;

-- name: forget_version_tasks
-- Kept versions outlive the tasks that made them (their manifests hold no task either).
UPDATE state.dataset_versions SET created_by_task = NULL, created_by_attempt = NULL
WHERE dataset_version = ANY(%(versions)s) AND created_by_task IS NOT NULL;

-- name: delete_versions
DELETE FROM state.dataset_versions WHERE dataset_version = ANY(%(versions)s);

-- name: delete_empty_datasets
DELETE FROM state.datasets d
WHERE d.dataset_uuid = ANY(%(dataset_uuids)s)
  AND NOT EXISTS (SELECT 1 FROM state.dataset_versions v WHERE v.dataset_uuid = d.dataset_uuid)
RETURNING d.key;

-- name: delete_job_outbox
-- Wake-ups of the job's tasks, published or not (a published one finds nothing to claim).
DELETE FROM state.outbox
WHERE payload ->> 'task_id' IN (SELECT task_id::text FROM state.tasks WHERE job_id = %(job_id)s);

-- name: delete_job_dead_tasks
DELETE FROM state.dead_tasks WHERE task_id IN (SELECT task_id FROM state.tasks WHERE job_id = %(job_id)s);

-- name: delete_job_attempts
DELETE FROM state.task_attempts WHERE task_id IN (SELECT task_id FROM state.tasks WHERE job_id = %(job_id)s);

-- name: delete_job_tasks
DELETE FROM state.tasks WHERE job_id = %(job_id)s;

-- name: delete_job
DELETE FROM state.jobs WHERE job_id = %(job_id)s;

-- ---------------------------------------------------------------- lost versions (planner.recover_lost)

-- name: committed_ranges_of_versions
-- The job's committed ranges whose dataset version the store no longer holds.
SELECT range_id, dataset, range_start, range_end, generation, dataset_version
FROM state.sync_ranges
WHERE job_id = %(job_id)s AND status = 'committed' AND dataset_version = ANY(%(versions)s)
ORDER BY range_start, dataset;
