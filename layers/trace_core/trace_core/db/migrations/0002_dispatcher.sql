-- Dispatcher: what 0001 lacked for retries with backoff and for the fence to hold in SQL too.
-- See docs/architecture/task_lifecycle.md and docs/decisions/0201-dispatcher-core.md.

-- A task remembers its queue, so a retry's wake-up goes where the first one went.
ALTER TABLE state.tasks
    ADD COLUMN queue text NOT NULL DEFAULT 'trace-tasks'
        CHECK (queue ~ '^[A-Za-z0-9_-]{1,80}$');

-- A claim never goes past the last allowed attempt; a queued task always has one left.
ALTER TABLE state.tasks
    ADD CONSTRAINT tasks_attempt_within_max CHECK (attempt <= max_attempts),
    ADD CONSTRAINT tasks_queued_has_attempt_left CHECK (status <> 'queued' OR attempt < max_attempts);

-- A wake-up for a retry with backoff is written in the retry's transaction but
-- published only once it is due, so it never arrives before the task can be claimed.
ALTER TABLE state.outbox
    ADD COLUMN not_before timestamptz NOT NULL DEFAULT now();
DROP INDEX state.outbox_pending;
CREATE INDEX outbox_pending ON state.outbox (not_before, outbox_id) WHERE published_at IS NULL;

-- The fence in SQL: the attempt counter (fencing token) never decreases, whoever
-- writes (an admin retry or snooze cannot lower it), and a completed task is final.
CREATE FUNCTION state.tasks_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.attempt < OLD.attempt THEN
        RAISE EXCEPTION 'task % attempt may only increase (% -> %)', OLD.task_id, OLD.attempt, NEW.attempt
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status = 'completed' AND NEW IS DISTINCT FROM OLD THEN
        RAISE EXCEPTION 'task % is completed and may not change', OLD.task_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_guard BEFORE UPDATE ON state.tasks
    FOR EACH ROW EXECUTE FUNCTION state.tasks_guard();
