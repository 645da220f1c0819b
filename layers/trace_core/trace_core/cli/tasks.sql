-- Named queries of `trace-lite task` and the tasks section of `trace-lite status`.

-- name: counts_by_status
SELECT status, count(*) AS n FROM state.tasks GROUP BY status;

-- name: pending_wakeups
SELECT count(*) AS n FROM state.outbox WHERE published_at IS NULL;
