-- Chain sync: per dataset stream a cursor, and a ledger of scheduled ranges.
-- A range is end-exclusive [range_start, range_end) (invariant 6).

CREATE TABLE state.sync_streams (
    job_id       uuid NOT NULL REFERENCES state.jobs (job_id),
    dataset      text NOT NULL,
    dataset_key  text NOT NULL,
    chain_id     bigint NOT NULL,
    -- Planning frontier: the first block not yet covered by a scheduled range.
    next_block   bigint NOT NULL CHECK (next_block >= 0),
    -- Every block below the cursor is committed in contiguous, hash-linked ranges.
    cursor       bigint NOT NULL CHECK (cursor >= 0),
    cursor_hash  text,
    -- Exclusive end the planner schedules up to (fixed target, or the last safe head seen + 1).
    target       bigint,
    -- Set while a hash link is broken: the range_start where range N+1 does not link to range N.
    broken_at    bigint,
    last_error   text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, dataset),
    UNIQUE (chain_id, dataset_key),
    CHECK (cursor <= next_block)
);

CREATE TABLE state.sync_ranges (
    range_id          bigserial PRIMARY KEY,
    job_id            uuid NOT NULL REFERENCES state.jobs (job_id),
    chain_id          bigint NOT NULL,
    dataset_key       text NOT NULL,
    dataset           text NOT NULL,
    range_start       bigint NOT NULL CHECK (range_start >= 0),
    range_end         bigint NOT NULL,
    -- Bumped when a reorg forces re-extraction of a committed range.
    generation        integer NOT NULL DEFAULT 0,
    status            text NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('scheduled', 'committed', 'superseded')),
    task_id           uuid REFERENCES state.tasks (task_id),
    reschedules       integer NOT NULL DEFAULT 0,
    dataset_version   text,
    first_parent_hash text,
    last_hash         text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    committed_at      timestamptz,
    CHECK (range_end > range_start),
    UNIQUE (chain_id, dataset_key, range_start, range_end, generation)
);
CREATE INDEX sync_ranges_stream ON state.sync_ranges (job_id, dataset, range_start);
-- At most one live (not superseded) range per stream and start.
CREATE UNIQUE INDEX sync_ranges_live ON state.sync_ranges (chain_id, dataset_key, range_start)
    WHERE status <> 'superseded';

-- A version whose range was reorged away is superseded: never granted again.
ALTER TABLE state.dataset_versions ADD COLUMN superseded_at timestamptz;
