-- Query audit: every Query Service request, accepted or rejected, is one row of
-- state.audit_log (invariant 8). 0001 gave principal, org, token id, decision and
-- reason; a query also needs what it asked, what it was allowed to see and what
-- it cost. See docs/specs/query_service.md.

ALTER TABLE state.audit_log
    ADD COLUMN query_id         uuid,
    ADD COLUMN status_code      smallint CHECK (status_code BETWEEN 100 AND 599),
    -- sha256 of the SQL text as received (hex); the text itself is kept too, capped by the service.
    ADD COLUMN sql_hash         text CHECK (sql_hash ~ '^[0-9a-f]{64}$'),
    ADD COLUMN sql_text         text,
    -- The dataset versions the token pinned (what the query could see), sorted.
    ADD COLUMN granted_versions text[] NOT NULL DEFAULT '{}',
    ADD COLUMN rows             bigint CHECK (rows >= 0),
    ADD COLUMN bytes            bigint CHECK (bytes >= 0),
    ADD COLUMN duration_ms      double precision CHECK (duration_ms >= 0);

CREATE UNIQUE INDEX audit_log_query ON state.audit_log (query_id) WHERE query_id IS NOT NULL;
CREATE INDEX audit_log_org_at ON state.audit_log (org_id, at);
CREATE INDEX audit_log_token ON state.audit_log (token_id) WHERE token_id IS NOT NULL;
