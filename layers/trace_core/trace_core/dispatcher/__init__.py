"""The dispatcher: tasks, leases with attempt fencing, the outbox and the lease reaper.

- ``tasks``: create, claim, claim_next, heartbeat, complete, complete_many, abandon, get, list_tasks, attempts
- ``outbox``: drain (publish pending wake-ups through a QueueDriver)
- ``reaper``: reap (expired leases -> retry with backoff, or dead)
- ``lifecycle``: the pure rules (fence, retry decisions, backoff)
- ``models`` / ``errors``: domain values and errors; ``wire`` / ``api``: the HTTP API

See docs/architecture/task_lifecycle.md.
"""
