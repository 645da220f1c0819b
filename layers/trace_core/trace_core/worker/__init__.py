"""The worker wrapper: long-poll wake-ups, claim leases, heartbeat, run operators, complete, ack."""
