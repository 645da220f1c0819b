"""The Query Service as a real process on a real port (`python -m trace_core.query.service`, as `trace-lite up`
starts it): health, HTTP errors, audit from the child, and tokens far larger than default header limits."""

from __future__ import annotations

import uuid

import httpx
import pytest
from trace_core.auth import grants as auth_grants
from trace_core.lite import procs
from trace_core.lite import query as query_lite

from tests.integration.query_service import helpers


@pytest.fixture
def served(qs_settings):
    record = query_lite.start(qs_settings)
    try:
        yield record
    finally:
        procs.stop(record.pid)
    assert not procs.alive(record.pid)


def test_process_binds_loopback_answers_health_and_audits(served, conn):
    assert served.url.startswith("http://127.0.0.1:")
    assert query_lite.healthy(served)
    response = httpx.post(f"{served.url}/v1/query", json={"sql": "select 1"}, timeout=30)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "token_missing"
    assert helpers.audit_row(conn, error["query_id"])["status_code"] == 401


def test_a_token_pinning_hundreds_of_versions_fits_in_the_header(served, qs_settings, publish, conn):
    # GIVEN a token with a real blocks grant plus a grant pinning 400 versions (~80 KB of header)
    real = publish("blocks", 0, 100, namespace="wide")
    many = auth_grants.build([
        {"dataset_key": "wide/logs", "dataset_uuid": uuid.UUID(int=7), "dataset_version": f"{n:032x}",
         "storage_prefix": f"cryo/10143/x/{n * 10}_{n * 10 + 10}/{n:032x}/", "range_start": n * 10,
         "range_end": n * 10 + 10}
        for n in range(400)])
    token = helpers.user_token(qs_settings, [*helpers.grants_of(real), *many])
    assert len(token) > 64 * 1024
    # WHEN it is sent THEN the service reads and verifies it, answers, and audits the user
    response = httpx.post(f"{served.url}/v1/query", headers=helpers.bearer(token),
                          json={"sql": "select count(*) from blocks"}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[100]]
    row = helpers.audit_row(conn, response.json()["query_id"])
    assert row["principal"] == "user:ada@example.com"
    assert len(row["granted_versions"]) == 401
