-- Dispatcher: the same guarantees for less work per task (docs/decisions/0304).

-- The fence in SQL (0002) ran a plpgsql function for every updated task row,
-- two per task (claim, completion). The WHEN clause is evaluated in C and lets
-- the function run only for an update it is about to reject: same guarantee
-- (the attempt never decreases; a completed row never changes), whoever writes.
DROP TRIGGER tasks_guard ON state.tasks;
CREATE TRIGGER tasks_guard BEFORE UPDATE ON state.tasks
    FOR EACH ROW
    WHEN (NEW.attempt < OLD.attempt OR (OLD.status = 'completed' AND OLD.* IS DISTINCT FROM NEW.*))
    EXECUTE FUNCTION state.tasks_guard();

-- claim_next takes the oldest due tasks in (not_before, task_id) order. With
-- an index on not_before alone, every claim read and sorted the whole backlog
-- (a batch of creates shares one not_before); this one is read in order and
-- stops at the batch size.
DROP INDEX state.tasks_runnable;
CREATE INDEX tasks_runnable ON state.tasks (not_before, task_id) WHERE status = 'queued';
