-- Foundation: tenancy, the dispatcher's state (jobs, tasks, attempts, outbox,
-- dead tasks), the dataset registry and the audit log.
-- Postgres state is the truth; queues only carry wake-ups (invariant 1).

CREATE SCHEMA IF NOT EXISTS state;
CREATE SCHEMA IF NOT EXISTS data;

-- ---------------------------------------------------------------- tenancy
CREATE TABLE state.orgs (
    org_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE state.roles (
    role        text PRIMARY KEY,
    description text NOT NULL
);
INSERT INTO state.roles (role, description) VALUES
    ('admin',  'manages the org, its users, jobs and grants'),
    ('member', 'creates jobs, bundles, alert definitions and queries'),
    ('reader', 'queries granted datasets only');

CREATE TABLE state.users (
    user_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid NOT NULL REFERENCES state.orgs (org_id),
    email      text NOT NULL,
    role       text NOT NULL REFERENCES state.roles (role),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, email)
);

-- ---------------------------------------------------------------- jobs and tasks
CREATE TABLE state.jobs (
    job_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     uuid REFERENCES state.orgs (org_id),
    name       text NOT NULL UNIQUE,
    kind       text NOT NULL,
    spec       jsonb NOT NULL,
    spec_hash  text NOT NULL,
    status     text NOT NULL DEFAULT 'active'
               CHECK (status IN ('active', 'paused', 'completed', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE state.tasks (
    task_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id           uuid REFERENCES state.jobs (job_id),
    operator         text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key  text UNIQUE,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'completed', 'failed', 'dead')),
    -- The fencing token: the number of the newest attempt ever claimed. It only
    -- ever increases (no admin retry lowers it), so a stale worker can never
    -- act on a later attempt.
    attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    backoff_base_ms  integer NOT NULL DEFAULT 1000 CHECK (backoff_base_ms >= 0),
    lease_expires_at timestamptz,
    not_before       timestamptz NOT NULL DEFAULT now(),
    outputs          jsonb,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CHECK ((status = 'running') = (lease_expires_at IS NOT NULL))
);
CREATE INDEX tasks_runnable ON state.tasks (not_before) WHERE status = 'queued';
CREATE INDEX tasks_leased ON state.tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_job ON state.tasks (job_id);

CREATE TABLE state.task_attempts (
    task_id          uuid NOT NULL REFERENCES state.tasks (task_id),
    attempt          integer NOT NULL CHECK (attempt >= 1),
    worker_id        text NOT NULL,
    lease_token      uuid NOT NULL DEFAULT gen_random_uuid(),
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    heartbeat_at     timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz NOT NULL,
    finished_at      timestamptz,
    outcome          text CHECK (outcome IN ('succeeded', 'failed', 'expired', 'abandoned')),
    error            text,
    PRIMARY KEY (task_id, attempt),
    CHECK ((outcome IS NULL) = (finished_at IS NULL))
);
-- At most one live (unfinished) attempt per task.
CREATE UNIQUE INDEX task_attempts_one_live ON state.task_attempts (task_id) WHERE finished_at IS NULL;

-- Tasks that exhausted their attempts (the dead-letter record).
CREATE TABLE state.dead_tasks (
    task_id    uuid PRIMARY KEY REFERENCES state.tasks (task_id),
    attempts   integer NOT NULL,
    last_error text,
    died_at    timestamptz NOT NULL DEFAULT now()
);

-- Every queue side effect is a row here, written in the intent's transaction (invariant 2).
CREATE TABLE state.outbox (
    outbox_id        bigserial PRIMARY KEY,
    queue            text NOT NULL,
    payload          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error       text
);
CREATE INDEX outbox_pending ON state.outbox (outbox_id) WHERE published_at IS NULL;

-- ---------------------------------------------------------------- datasets
CREATE TABLE state.datasets (
    dataset_uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key          text NOT NULL UNIQUE,
    chain_id     bigint NOT NULL CHECK (chain_id > 0),
    cryo_dataset text NOT NULL,
    schema_hash  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE state.dataset_versions (
    -- Deterministic: a pure function of {chain_id, dataset, range, config_hash}.
    dataset_version    text PRIMARY KEY,
    dataset_uuid       uuid NOT NULL REFERENCES state.datasets (dataset_uuid),
    range_start        bigint NOT NULL CHECK (range_start >= 0),
    range_end          bigint NOT NULL,  -- exclusive (invariant 6)
    config_hash        text NOT NULL,
    storage_prefix     text NOT NULL,
    manifest_key       text NOT NULL,
    row_count          bigint,
    bytes              bigint,
    status             text NOT NULL DEFAULT 'staged' CHECK (status IN ('staged', 'committed')),
    created_by_task    uuid REFERENCES state.tasks (task_id),
    created_by_attempt integer,
    created_at         timestamptz NOT NULL DEFAULT now(),
    committed_at       timestamptz,
    CHECK (range_end > range_start),
    CHECK ((status = 'committed') = (committed_at IS NOT NULL)),
    UNIQUE (dataset_uuid, range_start, range_end, config_hash)
);

-- ---------------------------------------------------------------- audit
CREATE TABLE state.audit_log (
    audit_id   bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    principal  text NOT NULL,
    org_id     uuid,
    action     text NOT NULL,
    token_id   text,
    decision   text NOT NULL CHECK (decision IN ('allowed', 'denied', 'error')),
    reason     text,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON state.audit_log (at);
