-- Named queries of the Query Service. Parameters are always bound.

-- name: committed_versions
-- Trusted attach: what the registry says about the pinned versions (committed ones only).
SELECT dataset_version, dataset_uuid, storage_prefix, manifest_sha256
FROM state.dataset_versions
WHERE dataset_version = ANY(%(versions)s::text[]) AND status = 'committed';

-- name: task_attempt
-- A task token is good only while its attempt is the task's live one (attempt fencing).
SELECT status, attempt FROM state.tasks WHERE task_id = %(task_id)s;

-- name: insert_audit
INSERT INTO state.audit_log
    (principal, org_id, action, token_id, decision, reason, detail, query_id, status_code, sql_hash, sql_text,
     granted_versions, rows, bytes, duration_ms)
VALUES
    (%(principal)s, %(org_id)s, %(action)s, %(token_id)s, %(decision)s, %(reason)s, %(detail)s, %(query_id)s,
     %(status_code)s, %(sql_hash)s, %(sql_text)s, %(granted_versions)s, %(rows)s, %(bytes)s, %(duration_ms)s);
