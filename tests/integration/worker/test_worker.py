"""The worker wrapper in-process against real Postgres + pgqueue + the dispatcher core."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from trace_core.dispatcher import models, reaper, tasks
from trace_core.worker import client as client_mod
from trace_core.worker import config as worker_config
from trace_core.worker import direct, errors, operators, registry, runner, wakeups

from tests.integration.worker.conftest import PLUGIN, events, max_concurrency, wait_for

pytestmark = pytest.mark.usefixtures("dispatcher_loop")


def test_noop_task_runs_the_whole_lifecycle(create, get_task, attempts, start_worker, driver, queue_name):
    # GIVEN a worker
    worker = start_worker()
    # WHEN a noop task is created (its wake-up goes through the outbox and pgqueue)
    task = create("noop")
    # THEN it completes with the noop's outputs after exactly one attempt
    done = wait_for(lambda: (t := get_task(task.task_id)).status == "completed" and t)
    assert done.outputs == {"noop": True, "attempt": 1}
    [attempt] = attempts(task.task_id)
    assert attempt["outcome"] == "succeeded" and attempt["worker_id"] == worker.config.worker_id
    # AND its wake-up was acked (nothing left in the queue)
    wait_for(lambda: driver.depth(queue_name) == {"visible": 0, "in_flight": 0})
    assert worker.stats["succeeded"] == 1


def test_on_pgqueue_in_the_same_database_a_wakeup_is_gone_once_its_completion_committed(
        create, get_task, start_worker, driver, queue_name, db_pool):
    # GIVEN a worker whose queue lives in the dispatcher's database
    assert direct.for_driver(db_pool, driver).acks_messages
    start_worker()
    # WHEN a task completes
    task = create("noop")
    wait_for(lambda: get_task(task.task_id).status == "completed")
    # THEN its wake-up was deleted in the same transaction: no moment where one exists without the other
    assert driver.depth(queue_name) == {"visible": 0, "in_flight": 0}


def test_a_claim_acks_the_wakeups_it_spent_in_its_own_transaction(db_pool, driver, queue_name):
    # GIVEN two queued tasks whose wake-ups a worker has received
    with db_pool.connection() as conn:
        created = tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue_name)] * 2)
    wait_for(lambda: driver.depth(queue_name)["visible"] == 2)
    by_task: dict = {}
    for message in driver.receive(queue_name, max_messages=2, wait_seconds=0):
        by_task.setdefault(wakeups.task_id_of(message.body), []).append(message)
    assert set(by_task) == {t.task_id for t in created}
    client = direct.for_driver(db_pool, driver)
    # WHEN a claim fails THEN no wake-up is acked (they come back after their visibility timeout)
    with pytest.raises(Exception, match="limit"):
        client.claim_next(worker_id="w1", operators=["noop"], queue=queue_name, lease_seconds=30, limit=0,
                          wakeups=by_task)
    assert driver.depth(queue_name) == {"visible": 0, "in_flight": 2}
    # WHEN a claim takes one of the two tasks
    [lease] = client.claim_next(worker_id="w1", operators=["noop"], queue=queue_name, lease_seconds=30, limit=1,
                                wakeups=by_task)
    # THEN the other task's wake-up was acked with the claim; the claimed task's stays held until completion
    assert driver.depth(queue_name) == {"visible": 0, "in_flight": 1}
    held = by_task[lease.task.task_id]
    done = client.complete([client_mod.CompletionItem(lease, models.Success(outputs={}), None, held)])
    assert done == {lease.task.task_id: "completed"}
    assert driver.depth(queue_name) == {"visible": 0, "in_flight": 0}


def test_duplicate_wakeups_never_run_one_task_concurrently(create, get_task, attempts, start_worker, driver,
                                                          queue_name, tmp_path: Path):
    # GIVEN two workers and a 1 s task
    log = tmp_path / "runs.jsonl"
    start_worker(), start_worker()
    task = create("sleep", {"seconds": 1.0, "log": str(log)})
    # WHEN the same wake-up is published 5 more times
    driver.publish(queue_name, [wakeups.body_for(task.task_id)] * 5)
    # THEN exactly one attempt ran, never two at once, and every wake-up was consumed
    wait_for(lambda: get_task(task.task_id).status == "completed")
    assert max_concurrency(log) == 1
    assert [e["event"] for e in events(log)] == ["start", "end"]
    assert len(attempts(task.task_id)) == 1
    wait_for(lambda: driver.depth(queue_name) == {"visible": 0, "in_flight": 0})


def test_a_wakeup_for_a_completed_or_unknown_task_is_acked_and_ignored(create, get_task, attempts, start_worker,
                                                                      driver, queue_name):
    worker = start_worker()
    task = create("noop")
    wait_for(lambda: get_task(task.task_id).status == "completed")
    # WHEN wake-ups arrive for the completed task and for a task that does not exist
    driver.publish(queue_name, [wakeups.body_for(task.task_id, 1), wakeups.body_for(uuid.uuid4())])
    # THEN both are acked, and the completed task is untouched
    wait_for(lambda: worker.stats["ignored"] >= 2)
    wait_for(lambda: driver.depth(queue_name) == {"visible": 0, "in_flight": 0})
    assert len(attempts(task.task_id)) == 1
    assert get_task(task.task_id).status == "completed"


def test_malformed_wakeups_are_dead_lettered_and_block_nothing(create, get_task, start_worker, driver, queue_name):
    # GIVEN poison messages at the head of the queue
    driver.publish(queue_name, [{"hello": "world"}, {"task_id": "not-a-uuid"}, {"task_id": 42}])
    start_worker(malformed_retry_seconds=0)
    # WHEN a good task is created behind them
    task = create("noop")
    # THEN the good task completes at once, and the poison reaches the dead table after max receives (3)
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=5)
    wait_for(lambda: len(driver.dead(queue_name)) == 3, timeout=15)
    dead = driver.dead(queue_name)
    assert sorted(str(d["body"]) for d in dead) == sorted(
        str(b) for b in [{"hello": "world"}, {"task_id": "not-a-uuid"}, {"task_id": 42}]
    )
    assert {d["receive_count"] for d in dead} == {3}


def test_a_retryable_failure_is_retried_and_a_permanent_one_is_not(create, get_task, attempts, start_worker):
    start_worker()
    flaky = create("flaky", {"succeed_on": 2}, backoff_base_ms=0)
    broken = create("fail")
    wait_for(lambda: get_task(flaky.task_id).status == "completed")
    assert [a["outcome"] for a in attempts(flaky.task_id)] == ["failed", "succeeded"]
    assert "flaky failure on attempt 1" in attempts(flaky.task_id)[0]["error"]
    wait_for(lambda: get_task(broken.task_id).status == "failed")
    assert get_task(broken.task_id).last_error == "bad input: this task can never succeed"
    assert len(attempts(broken.task_id)) == 1


def test_a_task_for_an_operator_no_worker_has_waits_unharmed_until_one_can_run_it(create, get_task, attempts,
                                                                                 start_worker):
    # GIVEN a worker that does not know operator "later_op"
    worker = start_worker(poll_seconds=0.5)
    task = create("later_op")
    # WHEN its wake-up arrives THEN the worker spends the wake-up without claiming (no attempt is burnt)
    wait_for(lambda: worker.stats["ignored"] >= 1)
    assert get_task(task.task_id).status == "queued" and attempts(task.task_id) == []
    # WHEN a worker that runs it starts THEN its poll picks the task up without a wake-up
    later = registry.Registry({"later_op": operators.Operator(lambda ctx: {"ran": True})})
    capable = start_worker(later, poll_seconds=0.5)
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=5)
    assert get_task(task.task_id).outputs == {"ran": True}
    assert capable.stats["claimed_by_poll"] == 1 and worker.stats["claimed"] == 0


def test_commit_hook_runs_in_the_winning_completion(create, get_task, start_worker, db_pool):
    start_worker()
    task = create("commit")
    wait_for(lambda: get_task(task.task_id).status == "completed")
    with db_pool.connection() as conn:
        rows = conn.execute("SELECT detail FROM state.audit_log WHERE principal = 'test'").fetchall()
    assert [r["detail"] for r in rows] == [{"task_id": str(task.task_id), "attempt": 1}]


def test_a_job_longer_than_three_leases_runs_once(create, get_task, attempts, start_worker, tmp_path: Path):
    # GIVEN a 2 s lease (heartbeat every ~0.67 s) and a reaper sweeping every 0.1 s
    log = tmp_path / "runs.jsonl"
    start_worker(lease_seconds=2)
    start_worker(lease_seconds=2)
    # WHEN a task runs for 6.5 s (more than 3 leases)
    task = create("sleep", {"seconds": 6.5, "log": str(log)})
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=20)
    # THEN it ran once: one attempt, never reaped, never started twice
    assert [a["outcome"] for a in attempts(task.task_id)] == ["succeeded"]
    assert [e["event"] for e in events(log)] == ["start", "end"]


def test_a_lost_lease_cancels_the_operator_and_its_completion_is_rejected(
    create, get_task, attempts, start_worker, db_pool, tmp_path: Path
):
    # GIVEN a worker running a long task
    log = tmp_path / "runs.jsonl"
    worker = start_worker(lease_seconds=3, poll_seconds=60)
    task = create("sleep", {"seconds": 30, "log": str(log)}, backoff_base_ms=60_000)
    wait_for(lambda: events(log))
    # WHEN its lease is taken away (expired in the database and reaped, as after a long GC pause)
    with db_pool.connection() as conn:
        conn.execute("UPDATE state.tasks SET lease_expires_at = now() - interval '1 second' WHERE task_id = %s",
                     (task.task_id,))
        conn.execute("UPDATE state.task_attempts SET lease_expires_at = now() - interval '1 second' "
                     "WHERE task_id = %s", (task.task_id,))
        conn.commit()
        assert reaper.reap(conn) == 1
    # THEN the next heartbeat cancels the operator, and its late completion is fenced off
    wait_for(lambda: any(e["event"] == "cancelled" for e in events(log)), timeout=5)
    wait_for(lambda: worker.stats["rejected"] == 1)
    assert [a["outcome"] for a in attempts(task.task_id)] == ["expired"]
    assert get_task(task.task_id).status == "queued"


def test_stop_finish_lets_the_running_task_complete(create, get_task, attempts, start_worker):
    worker = start_worker()
    task = create("sleep", {"seconds": 1.0})
    wait_for(lambda: worker.in_flight == 1)
    worker.request_stop("finish")
    wait_for(lambda: get_task(task.task_id).status == "completed", timeout=10)
    assert [a["outcome"] for a in attempts(task.task_id)] == ["succeeded"]


def test_stop_abandon_gives_the_lease_back_for_an_immediate_retry(create, get_task, attempts, start_worker,
                                                                  tmp_path: Path):
    log = tmp_path / "runs.jsonl"
    first = start_worker(poll_seconds=60)
    task = create("sleep", {"seconds": 30, "log": str(log)})
    wait_for(lambda: first.in_flight == 1)
    first.request_stop("abandon")
    # THEN the attempt is recorded as abandoned and the task is queued again, due now
    wait_for(lambda: [a["outcome"] for a in attempts(task.task_id)] == ["abandoned"], timeout=5)
    assert get_task(task.task_id).status in ("queued", "running")
    # AND another worker picks it up at once from the fresh wake-up
    start_worker()
    wait_for(lambda: len(attempts(task.task_id)) == 2, timeout=5)


def test_fast_operators_are_prefetched_slow_ones_are_not(create, get_task, attempts, start_worker, db_pool,
                                                         queue_name):
    # GIVEN a worker with one operator thread and room to prefetch 10 more leases
    worker = start_worker(concurrency=1, prefetch=10)
    # WHEN a burst of fast noop tasks arrives (after one has shown they are fast)
    first = create("noop")
    wait_for(lambda: get_task(first.task_id).status == "completed")
    with db_pool.connection() as conn:
        burst = tasks.create_many(conn, [models.CreateTask(operator="noop", queue=queue_name) for _ in range(40)])
    wait_for(lambda: all(get_task(t.task_id).status == "completed" for t in burst))
    # THEN it held more leases than it has threads (bigger batches)
    assert 1 < worker.stats["max_in_flight"] <= 11

    # WHEN the operator turns slow THEN it holds no more leases than it can run
    slow = start_worker(concurrency=1, prefetch=10)
    worker.request_stop("finish")
    time.sleep(1.0)  # its receive loop (0.5 s long polls) has exited
    warm = create("sleep", {"seconds": 0.3})
    wait_for(lambda: get_task(warm.task_id).status == "completed")
    assert attempts(warm.task_id)[0]["worker_id"] == slow.config.worker_id
    with db_pool.connection() as conn:
        slow_burst = tasks.create_many(conn, [models.CreateTask(operator="sleep", payload={"seconds": 0.2},
                                                                queue=queue_name) for _ in range(4)])
    wait_for(lambda: all(get_task(t.task_id).status == "completed" for t in slow_burst), timeout=20)
    assert slow.stats["max_in_flight"] == 1


def test_slow_tasks_due_at_once_are_shared_by_idle_workers(get_task, attempts, start_worker, db_pool, queue_name):
    # GIVEN two idle workers, each able to run four tasks at once
    first, second = start_worker(concurrency=4), start_worker(concurrency=4)
    time.sleep(0.5)  # both are waiting for wake-ups
    # WHEN four slow tasks become due at once
    with db_pool.connection() as conn:
        burst = tasks.create_many(conn, [models.CreateTask(operator="sleep", payload={"seconds": 1.0},
                                                           queue=queue_name) for _ in range(4)])
    wait_for(lambda: all(get_task(t.task_id).status == "completed" for t in burst), timeout=20)
    # THEN both ran some of them: while its operators are slow a worker takes one wake-up at a time,
    # instead of the first to wake taking all four while the other idles
    ran_by = {attempts(t.task_id)[0]["worker_id"] for t in burst}
    assert ran_by == {first.config.worker_id, second.config.worker_id}


def test_worker_settings_are_validated_naming_the_field():
    with pytest.raises(errors.WorkerError) as caught:
        worker_config.WorkerConfig(lease_seconds=3, heartbeat_seconds=5)
    assert caught.value.details["field"] == "heartbeat_seconds"


def test_a_worker_runs_only_the_operators_of_its_registry(create, get_task, attempts, start_worker):
    # GIVEN a worker whose pool runs noop alone (not the test operators)
    worker = start_worker(registry.for_pool(["noop"]), poll_seconds=0.5)
    # WHEN a task of another operator and a noop task are queued
    other = create("flaky")
    mine = create("noop")
    # THEN it runs the noop task and never claims the other
    wait_for(lambda: get_task(mine.task_id).status == "completed")
    wait_for(lambda: worker.stats["ignored"] >= 1)
    assert get_task(other.task_id).status == "queued" and attempts(other.task_id) == []
    assert worker.stats["claimed"] == 1


def test_a_worker_with_a_bad_operator_module_fails_at_start_naming_it(db_pool, driver, make_settings):
    settings = make_settings(operator_modules=f"{PLUGIN},tests.no_such_module")
    with pytest.raises(errors.WorkerError) as caught:
        runner.Worker(direct.for_driver(db_pool, driver), driver, settings, worker_config.WorkerConfig())
    assert caught.value.details["module"] == "tests.no_such_module"
