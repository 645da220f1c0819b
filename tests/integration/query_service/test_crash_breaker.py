"""Queries that kill sandbox workers (issue 14, item 4): refused by the gate, and a circuit breaker per principal.

Through the real app, sandbox workers and Postgres.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import time

import pytest
from fastapi.testclient import TestClient
from trace_core.query.service import app, deps

from tests.integration.query_service import helpers

DEEP_JSON_TO_VARIANT = "select length(((repeat('[',20000)||repeat(']',20000))::json::variant)::varchar)"
SLOW = (
    "select sum(a.gas_used * b.gas_used + f.gas_used) from blocks a, blocks b, blocks c, blocks d, blocks e, blocks f"
)


@pytest.fixture(scope="module")
def blocks(publish):
    return [publish("blocks", 0, 50)]


def _token(settings, blocks, subject):
    return helpers.user_token(settings, helpers.grants_of(*blocks), subject=subject)


def test_deep_json_cast_to_variant_is_refused_before_it_reaches_a_worker(qs_settings, sandbox_engine, blocks, conn):
    # GIVEN the query that segfaults DuckDB 2.0.0 (JSON -> VARIANT recursion on a computed string)
    pids = sandbox_engine._engine.pids
    with TestClient(app.create_app(deps.build_service(qs_settings, sandbox=sandbox_engine))) as client:
        response = client.post("/v1/query", headers=helpers.bearer(_token(qs_settings, blocks, "ada@example.com")),
                               json={"sql": DEEP_JSON_TO_VARIANT})
    # THEN the gate refuses it, naming the cast, and no worker died
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden_syntax" and "VARIANT" in error["message"]
    assert helpers.audit_row(conn, error["query_id"])["decision"] == "denied"
    assert sandbox_engine._engine.pids == pids


def test_a_principal_whose_queries_keep_killing_workers_is_refused_for_a_while(qs_settings, sandbox_engine,
                                                                               blocks, conn):
    # GIVEN a breaker that opens after 2 crashes within a minute, for 60 s
    settings = qs_settings.model_copy(update={"query_breaker_crashes": 2, "query_breaker_window_s": 60.0,
                                              "query_breaker_cooldown_s": 60.0})
    crasher, other = _token(settings, blocks, "crasher@example.com"), _token(settings, blocks, "other@example.com")
    with TestClient(app.create_app(deps.build_service(settings, sandbox=sandbox_engine))) as client, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        def crash_once():
            # The worker dies under the query (as a DuckDB segfault would): SIGKILL every live worker.
            deadline = time.monotonic() + 30  # the previous round's replacements are up: the query starts at once
            while len(sandbox_engine._engine.pids) < settings.query_workers and time.monotonic() < deadline:
                time.sleep(0.05)
            running = pool.submit(client.post, "/v1/query", headers=helpers.bearer(crasher), json={"sql": SLOW})
            time.sleep(0.5)
            for pid in sandbox_engine._engine.pids:  # the live workers, the one running the query among them
                with contextlib.suppress(ProcessLookupError):  # a worker already being replaced
                    os.kill(pid, signal.SIGKILL)
            return running.result()

        # WHEN two of the principal's queries crash their workers
        crashes = [crash_once() for _ in range(2)]
        assert [r.json()["error"]["code"] for r in crashes] == ["engine_failure"] * 2, [r.text for r in crashes]
        assert helpers.audit_row(conn, crashes[-1].json()["error"]["query_id"])["detail"]["breaker"] == "opened"
        # THEN its next query is refused before the gate, with when to retry, and audited
        refused = client.post("/v1/query", headers=helpers.bearer(crasher), json={"sql": "select 1"})
        # AND another principal is still served (by the replacement workers)
        served = client.post("/v1/query", headers=helpers.bearer(other), json={"sql": "select count(*) from blocks"})
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "circuit_open" and 1 <= int(refused.headers["retry-after"]) <= 60
    row = helpers.audit_row(conn, error["query_id"])
    assert (row["decision"], row["principal"]) == ("denied", "user:crasher@example.com")
    assert served.status_code == 200, served.text
