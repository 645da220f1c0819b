-- Named queries of the dataset registry. Each block starts with `-- name: <name>`;
-- parameters are always bound (%(name)s), never formatted in. Version rows are read
-- with an explicit column list (other packages add columns of their own).

-- name: insert_dataset
INSERT INTO state.datasets (dataset_uuid, key, chain_id, cryo_dataset, schema_hash)
VALUES (%(dataset_uuid)s, %(key)s, %(chain_id)s, %(cryo_dataset)s, %(schema_hash)s)
ON CONFLICT (key) DO NOTHING;

-- name: select_dataset
SELECT dataset_uuid, key, chain_id, cryo_dataset, schema_hash, created_at
FROM state.datasets
WHERE key = %(key)s;

-- name: fill_dataset_schema_hash
-- The first schema seen becomes the dataset's; later versions keep theirs in their own row.
UPDATE state.datasets SET schema_hash = %(schema_hash)s
WHERE key = %(key)s AND schema_hash IS NULL;

-- name: insert_version
INSERT INTO state.dataset_versions
    (dataset_version, dataset_uuid, range_start, range_end, config_hash, storage_prefix, manifest_key, status)
VALUES
    (%(dataset_version)s, %(dataset_uuid)s, %(range_start)s, %(range_end)s, %(config_hash)s,
     %(storage_prefix)s, %(manifest_key)s, 'staged')
ON CONFLICT (dataset_version) DO NOTHING;

-- name: lock_version
-- Serialises publishers of the same version: the second waits, then sees the first one's result.
SELECT v.dataset_version, v.dataset_uuid, d.key AS dataset_key, d.chain_id, v.range_start, v.range_end,
       v.config_hash, v.storage_prefix, v.manifest_key, v.manifest_sha256, v.row_count, v.bytes, v.schema_hash,
       v.first_parent_hash, v.last_block_hash, v.cryo_version, v.status, v.created_by_task, v.created_by_attempt,
       v.created_at, v.committed_at
FROM state.dataset_versions v JOIN state.datasets d USING (dataset_uuid)
WHERE v.dataset_version = %(dataset_version)s
FOR UPDATE OF v;

-- name: select_version
SELECT v.dataset_version, v.dataset_uuid, d.key AS dataset_key, d.chain_id, v.range_start, v.range_end,
       v.config_hash, v.storage_prefix, v.manifest_key, v.manifest_sha256, v.row_count, v.bytes, v.schema_hash,
       v.first_parent_hash, v.last_block_hash, v.cryo_version, v.status, v.created_by_task, v.created_by_attempt,
       v.created_at, v.committed_at
FROM state.dataset_versions v JOIN state.datasets d USING (dataset_uuid)
WHERE v.dataset_version = %(dataset_version)s;

-- name: mark_committed
UPDATE state.dataset_versions SET
    status = 'committed',
    committed_at = now(),
    manifest_sha256 = %(manifest_sha256)s,
    row_count = %(row_count)s,
    bytes = %(bytes)s,
    schema_hash = %(schema_hash)s,
    first_parent_hash = %(first_parent_hash)s,
    last_block_hash = %(last_block_hash)s,
    cryo_version = %(cryo_version)s,
    created_by_task = %(created_by_task)s,
    created_by_attempt = %(created_by_attempt)s
WHERE dataset_version = %(dataset_version)s AND status = 'staged';

-- name: list_committed
-- Committed versions of one dataset that overlap [range_from, range_to), by range. A version
-- superseded after a reorg (superseded_at, migration 0005) is left out unless asked for.
SELECT v.dataset_version, v.dataset_uuid, d.key AS dataset_key, d.chain_id, v.range_start, v.range_end,
       v.config_hash, v.storage_prefix, v.manifest_key, v.manifest_sha256, v.row_count, v.bytes, v.schema_hash,
       v.first_parent_hash, v.last_block_hash, v.cryo_version, v.status, v.created_by_task, v.created_by_attempt,
       v.created_at, v.committed_at
FROM state.dataset_versions v JOIN state.datasets d USING (dataset_uuid)
WHERE d.key = %(key)s
  AND v.status = 'committed'
  AND v.range_end > %(range_from)s
  AND v.range_start < %(range_to)s
  AND (%(include_superseded)s OR v.superseded_at IS NULL)
ORDER BY v.range_start, v.range_end, v.dataset_version
LIMIT %(limit)s;

-- name: attempt_states
-- For staging cleanup: the state of each (task, attempt) that owns a staging prefix.
SELECT a.task_id, a.attempt, a.finished_at, a.outcome, t.status AS task_status, t.attempt AS task_attempt
FROM state.task_attempts a JOIN state.tasks t USING (task_id)
WHERE (a.task_id, a.attempt) IN (SELECT * FROM unnest(%(task_ids)s::uuid[], %(attempts)s::int[]));

-- name: versions_to_check
-- What the availability check looks for in the store: every committed version a reader may still be
-- given (superseded ones are left out), optionally only those of some datasets.
SELECT v.dataset_version, v.dataset_uuid, d.key AS dataset_key, v.range_start, v.range_end, v.storage_prefix,
       v.manifest_key, v.bytes
FROM state.dataset_versions v JOIN state.datasets d USING (dataset_uuid)
WHERE v.status = 'committed' AND v.superseded_at IS NULL
  AND (%(keys)s::text[] IS NULL OR d.key = ANY(%(keys)s::text[]))
ORDER BY d.key, v.range_start, v.dataset_version;
