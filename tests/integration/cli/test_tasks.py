"""`trace-lite task get | list` never print an RPC key a task's payload or error carries (real Postgres)."""

from __future__ import annotations

import json

from trace_core.dispatcher import models, tasks

KEY = "9aa3d95b3bc440fa88ea12eaa4456161"


def test_a_task_is_shown_with_the_keys_in_its_payload_and_error_masked(cli, db):
    # GIVEN a task whose payload names a keyed RPC URL and whose attempt failed quoting it
    url = f"https://mainnet.infura.io/v3/{KEY}"
    task = tasks.create(db, models.CreateTask(operator="noop", payload={"rpc": {"urls": [url]}}, max_attempts=1))
    lease = tasks.claim(db, task.task_id, worker_id="test", lease_seconds=30)
    tasks.complete(db, task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                   result=models.Failure(error=f"eth_getLogs at {url}: 429", retryable=False))
    # WHEN it is shown, as text and as JSON, and listed
    shown = [cli("task", "get", str(task.task_id)), cli("task", "get", str(task.task_id), "--json"),
             cli("task", "list", "--json")]
    # THEN every output keeps the URL's shape and masks its key
    for code, out, _ in shown:
        assert code == 0 and KEY not in out and "mainnet.infura.io/v3/***" in out
    as_json = json.loads(shown[1][1])
    assert as_json["payload"] == {"rpc": {"urls": ["https://mainnet.infura.io/v3/***"]}}
    assert as_json["attempts"][0]["error"] == "eth_getLogs at https://mainnet.infura.io/v3/***: 429"
