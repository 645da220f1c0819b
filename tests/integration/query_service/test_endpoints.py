"""POST /v1/query and /v1/task-query through the real FastAPI app (in-process HTTP), Postgres and moto S3.

Each request, accepted or refused, leaves exactly one audit row; errors map
to 400/401/403/408/413 with a stable code and the query id.
"""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import jwt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from trace_core.auth import keys, tokens
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from trace_core.query.service import app, deps, wire

from tests.integration.query_service import helpers


@pytest.fixture(scope="module")
def blocks(publish):
    """Blocks [0, 300) committed as three versions."""
    return [publish("blocks", s, s + 100) for s in (0, 100, 200)]


@pytest.fixture(scope="module")
def logs(publish):
    return [publish("logs", 0, 100)]


@pytest.fixture
def make_client(qs_settings, sandbox_engine):
    """Factory: the app over a service with these settings overrides (the module's sandbox shared)."""
    made = []

    def make(**overrides):
        settings = qs_settings.model_copy(update=overrides)
        client = TestClient(app.create_app(deps.build_service(settings, sandbox=sandbox_engine)))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client):
    return make_client()


def _query(client, token, sql, endpoint="/v1/query", **body):
    return client.post(endpoint, headers=helpers.bearer(token), json={"sql": sql, **body})


def test_count_over_a_multi_range_dataset_is_exact_and_audited(client, qs_settings, blocks, conn):
    # GIVEN a user token granting blocks pinned to three versions
    grants = helpers.grants_of(*blocks)
    token = helpers.user_token(qs_settings, grants)
    # WHEN the user counts blocks
    response = _query(client, token, "select count(*) as n, sum(gas_used) as gas from blocks")
    # THEN the answer covers every range exactly once
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == [[300, sum(1000 * n for n in range(300))]]
    assert [c["name"] for c in body["columns"]] == ["n", "gas"]
    assert body["truncated"] is False and body["export"] is None
    wire.QueryResponse.model_validate(body)  # the body is what the OpenAPI document promises
    # AND one audit row records who, what, which versions and the cost
    row = helpers.audit_row(conn, body["query_id"])
    assert (row["decision"], row["status_code"], row["principal"]) == ("allowed", 200, "user:ada@example.com")
    assert row["org_id"] == helpers.ORG and row["token_id"]
    assert row["granted_versions"] == sorted(v.dataset_version for v in blocks)
    assert row["sql_text"].startswith("select count(*)") and len(row["sql_hash"]) == 64
    assert row["rows"] == 1 and row["bytes"] > 0 and row["duration_ms"] > 0
    assert row["detail"]["relations"] == ["blocks"]
    assert set(row["detail"]["ms"]) == {"token", "gate", "attach", "execute", "worker", "shape"}
    assert 0 < row["detail"]["ms"]["worker"] <= row["detail"]["ms"]["execute"]


def test_values_are_exact_in_json_and_arrow(client, qs_settings, blocks):
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    sql = ("select block_number, block_hash, gas_used * 1000000000000 as big from blocks "
           "where block_number = 299")
    as_json = _query(client, token, sql).json()
    assert as_json["rows"] == [[299, "0x" + (299).to_bytes(32, "big").hex(), str(299_000 * 10**12)]]
    as_arrow = _query(client, token, sql, format="arrow")
    assert as_arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(as_arrow.content).read_all()
    assert table.to_pylist() == [{"block_number": 299, "block_hash": (299).to_bytes(32, "big"),
                                  "big": 299_000 * 10**12}]
    assert as_arrow.headers["x-trace-row-count"] == "1"


def _forge(token: str, header: dict | None = None, payload_edit=None, signature: str | None = None) -> str:
    head, payload, sig = token.split(".")
    if header is not None:
        head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    if payload_edit is not None:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        payload_edit(claims)
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{payload}.{sig if signature is None else signature}"


def test_bad_tokens_are_401_and_audited(client, qs_settings, blocks, logs, conn, tmp_path):
    grants = helpers.grants_of(*blocks)
    good = helpers.user_token(qs_settings, grants)
    kid = keys.from_settings(qs_settings).signing_key().kid
    payload = jwt.decode(good, options={"verify_signature": False})
    cases = [
        # tampered: the blocks grant re-pointed at the logs dataset
        ("token_signature", _forge(good, payload_edit=lambda c: c["grants"][0].update(
            relation="logs", dataset_key=logs[0].dataset_key, dataset_uuid=str(logs[0].dataset_uuid)))),
        # signed with an attacker's key under our kid
        ("token_signature", jwt.encode(payload, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA",
                                       headers={"kid": kid})),
        ("token_expired", helpers.expired(qs_settings, grants)),
        ("token_audience", tokens.mint_task_token(keys.from_settings(qs_settings), issuer=qs_settings.token_issuer,
                                                  task_id=uuid.uuid4(), attempt=1, grants=grants)),
        ("token_algorithm", _forge(good, header={"alg": "none", "typ": "JWT", "kid": kid}, signature="")),
        ("token_unknown_kid", tokens.mint_user_token(keys.FileKeyStore(tmp_path / "other.json"),
                                                     issuer=qs_settings.token_issuer, org_id=helpers.ORG,
                                                     subject="mallory", grants=grants)),
        ("token_malformed", "not-a-jwt"),
    ]
    for code, token in cases:
        response = _query(client, token, "select count(*) from blocks")
        assert response.status_code == 401, (code, response.text)
        error = response.json()["error"]
        assert error["code"] == code
        assert response.headers["www-authenticate"].startswith("Bearer")
        row = helpers.audit_row(conn, error["query_id"])
        assert (row["decision"], row["status_code"]) == ("denied", 401)
        assert row["reason"].startswith(code) and row["rows"] is None


def test_rotation_keeps_old_tokens_working_at_the_service(client, qs_settings, blocks):
    # GIVEN a token signed before another process rotates the key ring
    grants = helpers.grants_of(*blocks)
    before = helpers.user_token(qs_settings, grants)
    assert _query(client, before, "select count(*) from blocks").status_code == 200
    keys.FileKeyStore(keys.file_path(qs_settings)).rotate()
    after = helpers.user_token(qs_settings, grants)
    # THEN both the old and the new token answer
    assert _query(client, before, "select count(*) from blocks").status_code == 200
    assert _query(client, after, "select count(*) from blocks").status_code == 200


def test_missing_token_is_401_and_audited(client, conn):
    response = client.post("/v1/query", json={"sql": "select 1"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "token_missing"
    assert helpers.audit_row(conn, error["query_id"])["principal"] == "anonymous"


def test_token_for_dataset_a_used_on_dataset_b_is_403_and_audited(client, qs_settings, blocks, conn):
    # GIVEN a token granting blocks only WHEN it reads logs THEN 403 naming the relation
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    response = _query(client, token, "select count(*) from logs")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "relation_not_granted" and "logs" in error["message"]
    row = helpers.audit_row(conn, error["query_id"])
    assert (row["decision"], row["principal"]) == ("denied", "user:ada@example.com")
    assert row["sql_text"] == "select count(*) from logs"


@pytest.mark.parametrize(("sql", "code"), [
    ("select 1; select 2", "multiple_statements"),
    ("select * from read_parquet('/etc/passwd')", "forbidden_function"),
    ("select * from 'data.parquet'", "forbidden_relation"),
    ("delete from blocks", "not_select"),
])
def test_gate_rejection_is_400_with_the_reason(client, qs_settings, blocks, conn, sql, code):
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    response = _query(client, token, sql)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    row = helpers.audit_row(conn, response.json()["error"]["query_id"])
    assert row["decision"] == "denied" and row["reason"].startswith(code)


@pytest.mark.parametrize(("body", "field"), [
    ({"sql": 42}, "sql"),
    ({"sql": ""}, "sql"),
    ({"sql": "select 1", "format": "csv"}, "format"),
    ({"sql": "select 1", "max_rows": 0}, "max_rows"),
    ({"sql": "select 1", "colour": "red"}, "colour"),
    ({}, "sql"),
])
def test_bad_body_is_400_naming_the_field(client, qs_settings, blocks, conn, body, field):
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    response = client.post("/v1/query", headers=helpers.bearer(token), json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request" and error["details"]["field"] == field
    assert helpers.audit_row(conn, error["query_id"])["decision"] == "denied"


def test_non_json_body_is_400(client, qs_settings, blocks):
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    response = client.post("/v1/query", headers=helpers.bearer(token), content=b"select 1")
    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "body"


def test_slow_query_is_stopped_with_408_and_the_service_keeps_serving(make_client, qs_settings, blocks, conn):
    client = make_client(query_timeout_s=0.5)
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    slow = "select count(*) from blocks a, blocks b, blocks c, blocks d, blocks e"
    response = _query(client, token, slow)
    assert response.status_code == 408
    error = response.json()["error"]
    assert error["code"] == "timeout"
    assert helpers.audit_row(conn, error["query_id"])["decision"] == "error"
    assert _query(client, token, "select count(*) from blocks").json()["rows"] == [[300]]


def test_query_over_its_memory_limit_is_stopped_with_422_and_the_service_keeps_serving(make_client, qs_settings,
                                                                                       blocks, conn):
    client = make_client(query_memory_mb=128)
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    response = _query(client, token, "select string_agg(repeat('x', 100000), '') from blocks a, blocks b")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "memory_limit" and "128 MB" in error["message"]
    assert helpers.audit_row(conn, error["query_id"])["decision"] == "error"
    assert _query(client, token, "select count(*) from blocks").json()["rows"] == [[300]]


def test_large_result_is_413_without_export_and_a_parquet_link_with_it(client, qs_settings, blocks, conn, s3,
                                                                      buckets):
    # GIVEN a result over the 64 KiB inline cap of these settings
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    sql = "select a.block_number, b.block_hash from blocks a, blocks b where b.block_number < 20"
    refused = _query(client, token, sql)
    assert refused.status_code == 413
    assert "export" in refused.json()["error"]["message"]
    # WHEN export is asked THEN the rows are in the results bucket, linked by a presigned URL
    response = _query(client, token, sql, export=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] is None and body["row_count"] == 6000
    link = body["export"]
    assert link["bucket"] == buckets["results"]
    assert link["key"] == f"results/{helpers.ORG}/{body['query_id']}.parquet"
    downloaded = httpx.get(link["url"])
    assert downloaded.status_code == 200
    table = pq.read_table(pa.BufferReader(downloaded.content))
    assert table.num_rows == 6000 and table.column_names == ["block_number", "block_hash"]
    assert helpers.audit_row(conn, body["query_id"])["detail"]["export_key"] == link["key"]


def test_max_rows_truncates_and_says_so(client, qs_settings, blocks):
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    body = _query(client, token, "select block_number from blocks order by 1", max_rows=5).json()
    assert body["rows"] == [[0], [1], [2], [3], [4]] and body["truncated"] is True


def test_a_grant_pins_versions_even_when_newer_ones_commit(client, qs_settings, publish):
    # GIVEN a token minted when only [1000, 1100) of another namespace was committed
    first = publish("blocks", 1000, 1100, namespace="pinned")
    token = helpers.user_token(qs_settings, helpers.grants_of(first))
    # WHEN a newer range commits
    publish("blocks", 1100, 1200, namespace="pinned")
    # THEN the token still sees exactly its versions
    assert _query(client, token, "select count(*), min(block_number), max(block_number) from blocks").json()[
        "rows"] == [[100, 1000, 1099]]


def test_task_token_queries_while_its_attempt_is_live(client, qs_settings, blocks, conn):
    # GIVEN a claimed task and a task token for its attempt
    task = tasks.create(conn, task_models.CreateTask(operator="noop"))
    lease = tasks.claim(conn, task.task_id, worker_id="qs", lease_seconds=60)
    token = tokens.mint_task_token(keys.from_settings(qs_settings), issuer=qs_settings.token_issuer,
                                   task_id=task.task_id, attempt=lease.attempt, grants=helpers.grants_of(*blocks))
    # THEN it answers on the task endpoint, and not on the user endpoint
    response = _query(client, token, "select count(*) from blocks", endpoint="/v1/task-query")
    assert response.status_code == 200 and response.json()["rows"] == [[300]]
    row = helpers.audit_row(conn, response.json()["query_id"])
    assert row["principal"] == f"task:{task.task_id}#1" and row["action"] == "POST /v1/task-query"
    assert _query(client, token, "select 1").json()["error"]["code"] == "token_audience"
    # WHEN the attempt completes THEN the token is stale
    tasks.complete(conn, task.task_id, attempt=lease.attempt, lease_token=lease.lease_token,
                   result=task_models.Success())
    stale = _query(client, token, "select count(*) from blocks", endpoint="/v1/task-query")
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "token_stale_task"


def test_sql_the_engine_cannot_run_is_400_query_failed(client, qs_settings, blocks):
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    response = _query(client, token, "select no_such_column from blocks")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "query_failed" and "no_such_column" in error["message"]
    assert "cache" not in error["message"] and ".parquet" not in error["message"]  # no cache paths leak


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
