-- Named queries of the bundle registry (loaded by trace_core.db.queries).
-- Parameters are always bound (%(name)s). Orgs are named by slug, as manifests name them;
-- the tables hold the org's id.

-- name: org_id
SELECT org_id FROM state.orgs WHERE slug = %(org)s;

-- name: insert_key
-- A key already registered to the same org is returned as it is (registering is idempotent).
INSERT INTO state.udf_signing_keys (key_id, org_id, public_key)
VALUES (%(key_id)s, %(org_id)s, %(public_key)s)
ON CONFLICT (key_id) DO NOTHING;

-- name: get_key
SELECT o.slug AS org, k.key_id, k.public_key, k.created_at, k.revoked_at
FROM state.udf_signing_keys k JOIN state.orgs o USING (org_id)
WHERE o.slug = %(org)s AND k.key_id = %(key_id)s;

-- name: get_key_any_org
SELECT o.slug AS org, k.key_id, k.public_key, k.created_at, k.revoked_at
FROM state.udf_signing_keys k JOIN state.orgs o USING (org_id)
WHERE k.key_id = %(key_id)s;

-- name: lock_key
-- Held until the registering transaction ends: a revocation waits for it, and a registration
-- waits for a revocation in flight, so no version is registered under a key revoked before it.
SELECT k.revoked_at
FROM state.udf_signing_keys k
WHERE k.org_id = %(org_id)s AND k.key_id = %(key_id)s
FOR SHARE;

-- name: revoke_key
UPDATE state.udf_signing_keys k
   SET revoked_at = coalesce(k.revoked_at, now())
  FROM state.orgs o
 WHERE o.org_id = k.org_id AND o.slug = %(org)s AND k.key_id = %(key_id)s
RETURNING o.slug AS org, k.key_id, k.public_key, k.created_at, k.revoked_at;

-- name: list_keys
SELECT o.slug AS org, k.key_id, k.public_key, k.created_at, k.revoked_at
FROM state.udf_signing_keys k JOIN state.orgs o USING (org_id)
WHERE o.slug = %(org)s
ORDER BY k.created_at, k.key_id;

-- name: raise_latest
-- Creates the bundle at its first version, or raises latest_version under the row's lock; returns
-- no row when the version is not strictly newer (a replay or a rollback).
INSERT INTO state.udf_bundles AS b (org_id, name, latest_version)
VALUES (%(org_id)s, %(name)s, %(version)s)
ON CONFLICT (org_id, name) DO UPDATE
   SET latest_version = excluded.latest_version, updated_at = now()
 WHERE b.latest_version < excluded.latest_version
RETURNING b.latest_version;

-- name: latest_version
SELECT b.latest_version
FROM state.udf_bundles b JOIN state.orgs o USING (org_id)
WHERE o.slug = %(org)s AND b.name = %(name)s;

-- name: insert_version
INSERT INTO state.udf_bundle_versions (org_id, name, version, runtime, entrypoint, manifest, key_id, storage_key,
                                       sha256, size)
VALUES (%(org_id)s, %(name)s, %(version)s, %(runtime)s, %(entrypoint)s, %(manifest)s, %(key_id)s,
        %(storage_key)s, %(sha256)s, %(size)s)
RETURNING created_at;

-- name: get_version
-- version NULL: the latest.
SELECT o.slug AS org, v.name, v.version, v.runtime, v.entrypoint, v.manifest, v.key_id, v.storage_key, v.sha256,
       v.size, v.created_at
FROM state.udf_bundle_versions v
JOIN state.udf_bundles b USING (org_id, name)
JOIN state.orgs o USING (org_id)
WHERE o.slug = %(org)s AND v.name = %(name)s AND v.version = coalesce(%(version)s::integer, b.latest_version);

-- name: list_versions
SELECT o.slug AS org, v.name, v.version, v.runtime, v.entrypoint, v.manifest, v.key_id, v.storage_key, v.sha256,
       v.size, v.created_at
FROM state.udf_bundle_versions v JOIN state.orgs o USING (org_id)
WHERE o.slug = %(org)s AND v.name = %(name)s
ORDER BY v.version;

-- name: list_bundles
SELECT o.slug AS org, b.name, b.latest_version, b.created_at, b.updated_at
FROM state.udf_bundles b JOIN state.orgs o USING (org_id)
WHERE o.slug = %(org)s
ORDER BY b.name;
