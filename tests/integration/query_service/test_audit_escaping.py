"""Every request gets exactly one audit row, whatever bytes it carries (issue 14, item 7).

Postgres ``text`` cannot hold NUL and ``jsonb`` refuses ``\\u0000``, so a NUL in the
SQL, in a JSON key of the body or in a JWT header field used to make the audit
INSERT fail: the client got a 500 without a query id and nothing was recorded.
Through the real app, sandbox and Postgres.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from fastapi.testclient import TestClient
from trace_core.query.service import app, audit, deps

from tests.integration.query_service import helpers


@pytest.fixture(scope="module")
def blocks(publish):
    return [publish("blocks", 0, 50)]


@pytest.fixture
def client(qs_settings, sandbox_engine):
    with TestClient(app.create_app(deps.build_service(qs_settings, sandbox=sandbox_engine))) as made:
        yield made


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_nul_in_the_sql_is_refused_with_a_query_id_and_audited_escaped(client, qs_settings, blocks, conn):
    # GIVEN SQL carrying a NUL byte
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    sql = "select 1 -- \x00 hidden"
    # WHEN it is sent
    response = client.post("/v1/query", headers=helpers.bearer(token), content=json.dumps({"sql": sql}))
    # THEN the client gets a 4xx naming the query, and its one audit row holds the SQL with the NUL escaped
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    row = helpers.audit_row(conn, error["query_id"])
    assert row["decision"] == "denied" and row["status_code"] == 400
    assert row["sql_text"] == "select 1 -- \\u0000 hidden"
    assert row["sql_hash"] == hashlib.sha256(sql.encode()).hexdigest()  # the hash is of what was sent


def test_nul_in_a_json_key_is_400_and_audited(client, qs_settings, blocks, conn):
    # GIVEN a body whose unknown key holds a NUL (pydantic names the key in the error)
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    body = '{"sql": "select 1", "a\\u0000b": {"\\u0000": "\\u0000"}}'
    response = client.post("/v1/query", headers=helpers.bearer(token), content=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    row = helpers.audit_row(conn, error["query_id"])
    assert row["decision"] == "denied" and "\x00" not in row["reason"] and "a\\u0000b" in row["reason"]


def test_nul_in_a_jwt_header_field_needs_no_valid_token_and_is_audited(client, conn):
    # GIVEN an unsigned token whose header's kid and alg carry NULs
    header = _b64(json.dumps({"alg": "EdDSA\u0000", "kid": "k\u0000id", "typ": "JWT"}).encode())
    token = f"{header}.{_b64(b'{}')}.{_b64(b'sig')}"
    response = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": "select 1"})
    # THEN 401 with the query id, and the row keeps the forensic header fields escaped
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    row = helpers.audit_row(conn, error["query_id"])
    assert row["decision"] == "denied" and row["principal"] == "anonymous"
    assert row["detail"]["unverified"] == {"alg": "EdDSA\\u0000", "kid": "k\\u0000id"}


def test_a_lone_surrogate_in_the_sql_is_audited_too(client, qs_settings, blocks, conn):
    # JSON may escape a lone surrogate, which UTF-8 (and so Postgres) cannot encode: the same class of failure
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    response = client.post("/v1/query", headers=helpers.bearer(token), content='{"sql": "select \'\\ud800\'"}')
    assert response.status_code == 400, response.text
    row = helpers.audit_row(conn, response.json()["error"]["query_id"])
    assert row["decision"] == "denied"


def test_when_the_audit_row_cannot_be_written_the_client_still_gets_the_query_id(qs_settings, sandbox_engine,
                                                                                 blocks, caplog):
    # GIVEN an audit log that fails (Postgres down)
    class Broken:
        def write(self, record: audit.AuditRecord) -> None:
            raise OSError("connection refused")

    service = deps.build_service(qs_settings, sandbox=sandbox_engine)
    service._audit = Broken()
    token = helpers.user_token(qs_settings, helpers.grants_of(*blocks))
    with TestClient(app.create_app(service)) as client:
        response = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": "select 1"})
    # THEN no result is returned, but the refusal names the query and a log line records it
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "audit_unavailable" and error["query_id"]
    assert any(error["query_id"] in message for message in caplog.messages)
