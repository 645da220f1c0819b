-- Chain sync: one range task serves the ledger rows of several dataset streams
-- (docs/decisions/1001), and its completion finds them by task_id.
CREATE INDEX sync_ranges_task ON state.sync_ranges (task_id);
