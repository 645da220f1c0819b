"""One heavy principal cannot starve the others (issue 14, item 6): per-principal limits and a fair queue.

Through the real app, sandbox (2 workers) and Postgres, with 2 s queries so the test stays short.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest
from fastapi.testclient import TestClient
from trace_core.query.service import app, deps

from tests.integration.query_service import helpers

SLOW = (
    "select sum(a.gas_used * b.gas_used + f.gas_used) from blocks a, blocks b, blocks c, blocks d, blocks e, blocks f"
)


@pytest.fixture(scope="module")
def blocks(publish):
    return [publish("blocks", 0, 50)]


def _token(settings, blocks, subject):
    return helpers.user_token(settings, helpers.grants_of(*blocks), subject=subject)


def test_a_heavy_user_gets_one_worker_and_a_short_queue_while_others_are_served(qs_settings, sandbox_engine,
                                                                                 blocks, conn):
    # GIVEN 2 workers, at most 1 running + 1 queued query per principal, 2 s queries
    settings = qs_settings.model_copy(update={
        "query_timeout_s": 2.0, "query_queue_wait_s": 3.0, "query_max_queued_per_principal": 1})
    assert settings.query_workers == 2
    heavy, light = _token(settings, blocks, "heavy@example.com"), _token(settings, blocks, "light@example.com")
    with TestClient(app.create_app(deps.build_service(settings, sandbox=sandbox_engine))) as client, \
            concurrent.futures.ThreadPoolExecutor(4) as pool:
        def ask(token, sql):
            started = time.monotonic()
            response = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql})
            return response, time.monotonic() - started

        # WHEN the heavy user sends three slow queries at once
        flood = [pool.submit(ask, heavy, SLOW) for _ in range(3)]
        time.sleep(0.5)
        # AND another user then asks a quick question
        quick, waited = ask(light, "select count(*) from blocks")
        # THEN the quick question is answered at once, on the worker the heavy user could not take
        assert quick.status_code == 200, quick.text
        assert waited < 1.0, f"the light user waited {waited:.1f}s behind the heavy one"
        # AND the heavy user's third query was refused with when to retry; the other two ran in turn
        answers = sorted((f.result()[0] for f in flood), key=lambda r: r.status_code)
    assert [r.status_code for r in answers] == [408, 408, 429], [r.text for r in answers]
    refused = answers[-1]
    error = refused.json()["error"]
    assert error["code"] == "too_many_queries"
    assert 1 <= int(refused.headers["retry-after"]) <= 2 and error["details"]["retry_after_s"] >= 1
    row = helpers.audit_row(conn, error["query_id"])
    assert (row["decision"], row["status_code"], row["principal"]) == ("denied", 429, "user:heavy@example.com")
