-- User-function bundles (invariant 10; docs/specs/udf.md): the signing keys orgs sign bundles
-- with, the bundle names of each org, and each registered version with its signed manifest and
-- the content address of its archive in the bundles bucket. The archive itself is never here.
-- Versions are strictly increasing per (org, name): the primary key refuses a version twice, and
-- the registry raises udf_bundles.latest_version under the row's lock, only upwards, in the
-- transaction that inserts the version (no rollback, no replay).

-- ---------------------------------------------------------------- signing keys
-- key_id is a pure function of the public key (the first 32 hex digits of its sha256), so a key
-- belongs to one org. A revoked key verifies nothing, at upload or at load; it is never deleted,
-- so the versions it signed keep their provenance.
CREATE TABLE state.udf_signing_keys (
    key_id     text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{32}$'),
    org_id     uuid NOT NULL REFERENCES state.orgs (org_id),
    public_key bytea NOT NULL UNIQUE CHECK (length(public_key) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
CREATE INDEX udf_signing_keys_org ON state.udf_signing_keys (org_id);

-- ---------------------------------------------------------------- bundles
CREATE TABLE state.udf_bundles (
    org_id         uuid NOT NULL REFERENCES state.orgs (org_id),
    name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    -- The newest registered version: only ever raised, under this row's lock.
    latest_version integer NOT NULL CHECK (latest_version >= 1),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, name)
);

-- ---------------------------------------------------------------- versions
CREATE TABLE state.udf_bundle_versions (
    org_id      uuid NOT NULL,
    name        text NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    runtime     text NOT NULL CHECK (runtime IN ('python3.12', 'nodejs22', 'rust')),
    entrypoint  text NOT NULL CHECK (length(entrypoint) BETWEEN 1 AND 256),
    -- The signed manifest as uploaded (signature included): what every load checks again.
    manifest    jsonb NOT NULL CHECK (jsonb_typeof(manifest) = 'object'),
    key_id      text NOT NULL REFERENCES state.udf_signing_keys (key_id),
    -- Content address of the archive: bundles/<org slug>/<sha256>.zip.
    storage_key text NOT NULL CHECK (storage_key ~ '^bundles/[a-z0-9][a-z0-9-]{0,62}/[0-9a-f]{64}\.zip$'),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size        bigint NOT NULL CHECK (size > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, name, version),
    FOREIGN KEY (org_id, name) REFERENCES state.udf_bundles (org_id, name),
    -- The columns repeat what the signed manifest binds; they can never disagree with it.
    CHECK (manifest->>'name' = name AND manifest->'version' = to_jsonb(version)
           AND manifest->>'runtime' = runtime AND manifest->>'entrypoint' = entrypoint
           AND manifest->>'key_id' = key_id AND storage_key LIKE '%/' || sha256 || '.zip')
);
