"""Which URL of the job's RPC pool a cryo_ingest attempt uses: load spreads over the pool, retries move on."""

from __future__ import annotations

from collections import Counter

from trace_core.ingest import request

POOL = ["http://a:1", "http://b:2", "http://c:3"]
DATASETS = ["blocks", "transactions", "logs", "traces"]


def task(dataset: str, start: int, end: int, urls: list[str] = POOL) -> request.IngestRequest:
    """The payload the chain-sync planner writes: one dataset, one chunk-aligned range."""
    return request.parse({"chain_id": 10143, "datasets": [dataset], "range_start": start, "range_end": end,
                          "rpc": {"urls": urls}})


def test_first_attempts_of_a_sync_spread_evenly_over_the_pool():
    # GIVEN the planner's tasks for 6 consecutive ranges of 1,000 blocks and 4 datasets, over 3 URLs
    tasks = [task(d, start, start + 1000) for start in range(0, 6000, 1000) for d in DATASETS]
    # WHEN each first attempt picks its URL
    used = Counter(t.rpc_url(1) for t in tasks)
    # THEN every URL serves the same share
    assert used == dict.fromkeys(POOL, 8)


def test_a_few_tasks_in_flight_already_use_every_url():
    # GIVEN one worker's worth of work in flight: 2 ranges x 4 datasets
    tasks = [task(d, start, start + 500) for start in (2000, 2500) for d in DATASETS]
    # WHEN their first attempts pick URLs THEN no URL of the 3 sits idle, and the 4 datasets of a range split up
    assert {t.rpc_url(1) for t in tasks} == set(POOL)
    assert len({t.rpc_url(1) for t in tasks[:4]}) == 3


def test_each_retry_moves_to_the_next_url():
    # GIVEN a task WHEN it is retried THEN attempts 1..3 use three different URLs, and attempt 4 wraps around
    t = task("logs", 7000, 8000)
    urls = [t.rpc_url(n) for n in (1, 2, 3, 4)]
    assert set(urls[:3]) == set(POOL)
    assert urls[3] == urls[0]
    assert [POOL.index(u) for u in urls[:3]] in ([0, 1, 2], [1, 2, 0], [2, 0, 1])


def test_a_last_partial_range_and_a_one_url_pool_still_work():
    # GIVEN a fixed target that ends mid-chunk THEN its range still gets a URL of the pool
    assert task("blocks", 19000, 19500).rpc_url(1) in POOL
    # GIVEN a pool of one URL THEN every attempt uses it
    assert {task(d, s, s + 100, ["http://only:1"]).rpc_url(n)
            for d in DATASETS for s in (0, 100, 900) for n in (1, 2, 5)} == {"http://only:1"}
