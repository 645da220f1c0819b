-- Dataset registry, part 2: what a committed version needs so readers can trust it
-- (manifest digest, Parquet schema, hash links between adjacent ranges) and the
-- provenance link to the attempt that published it (invariant 5).

ALTER TABLE state.datasets
    ADD CONSTRAINT datasets_key_format CHECK (key ~ '^[a-z0-9][a-z0-9_-]{0,62}/[a-z0-9][a-z0-9_]{0,62}$');

ALTER TABLE state.dataset_versions
    -- sha256 of manifest.json's bytes: a reader checks the manifest it fetched against this.
    ADD COLUMN manifest_sha256   text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN schema_hash       text CHECK (schema_hash ~ '^[0-9a-f]{64}$'),
    -- Linked ranges: range N's last_block_hash must equal range N+1's first_parent_hash.
    ADD COLUMN first_parent_hash text CHECK (first_parent_hash ~ '^0x[0-9a-f]{64}$'),
    ADD COLUMN last_block_hash   text CHECK (last_block_hash ~ '^0x[0-9a-f]{64}$'),
    ADD COLUMN cryo_version      text,
    ADD CONSTRAINT dataset_versions_id_format CHECK (dataset_version ~ '^[0-9a-f]{32}$'),
    -- A committed version is complete: nothing a reader needs may be missing.
    ADD CONSTRAINT dataset_versions_committed_complete CHECK (
        status <> 'committed'
        OR (manifest_sha256 IS NOT NULL AND row_count IS NOT NULL AND bytes IS NOT NULL AND schema_hash IS NOT NULL)
    ),
    -- The publishing attempt must exist (nullable: a version published outside a task has none).
    ADD CONSTRAINT dataset_versions_attempt_fk FOREIGN KEY (created_by_task, created_by_attempt)
        REFERENCES state.task_attempts (task_id, attempt);

CREATE INDEX dataset_versions_committed_by_range
    ON state.dataset_versions (dataset_uuid, range_start) WHERE status = 'committed';
