-- Dispatcher: index only the tasks that have an idempotency key or a job (docs/decisions/0304).
-- Most tasks have neither, and a claim or a completion changes indexed columns, so every
-- such update used to add a NULL entry to both indexes. Lookups by a key or a job imply
-- NOT NULL and still use them; uniqueness of the keys that exist is unchanged.

ALTER TABLE state.tasks DROP CONSTRAINT tasks_idempotency_key_key;
CREATE UNIQUE INDEX tasks_idempotency_key ON state.tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

DROP INDEX state.tasks_job;
CREATE INDEX tasks_job ON state.tasks (job_id) WHERE job_id IS NOT NULL;
