-- Named queries of the auth package. Parameters are always bound.

-- name: ensure_org
INSERT INTO state.orgs (slug, name) VALUES (%(slug)s, %(name)s)
ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug
RETURNING org_id;

-- name: ensure_user
INSERT INTO state.users (org_id, email, role) VALUES (%(org_id)s, %(email)s, %(role)s)
ON CONFLICT (org_id, email) DO UPDATE SET email = EXCLUDED.email
RETURNING user_id, role;

-- name: task_org
SELECT j.org_id
FROM state.tasks t LEFT JOIN state.jobs j USING (job_id)
WHERE t.task_id = %(task_id)s;
