"""Issuing tokens from Postgres state: the Lite principal and user token, and a claimed task's token."""

from __future__ import annotations

import uuid

import pytest
from trace_core.auth import errors, issuing, keys, tokens
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks


@pytest.fixture(scope="module")
def synced(publish, make_visible):
    """A finished sync of namespace `issued`: blocks [0, 200) in two ranges, logs [0, 100)."""
    versions = [publish("blocks", 0, 100, namespace="issued"), publish("blocks", 100, 200, namespace="issued"),
                publish("logs", 0, 100, namespace="issued")]
    make_visible(versions)
    return versions


def test_lite_principal_is_created_once(conn):
    first = issuing.lite_principal(conn)
    assert issuing.lite_principal(conn) == first
    org = conn.execute("SELECT slug FROM state.orgs WHERE org_id = %s", (first[0],)).fetchone()
    user = conn.execute("SELECT email, role FROM state.users WHERE org_id = %s", (first[0],)).fetchall()
    assert org["slug"] == "lite" and user == [{"email": "lite@localhost", "role": "admin"}]


def test_lite_user_token_grants_every_visible_version(conn, qs_settings, synced):
    store = keys.from_settings(qs_settings)
    token = issuing.lite_user_token(conn, store, issuer=qs_settings.token_issuer)
    claims = tokens.verify(store, token, audience=tokens.USER_AUDIENCE, issuer=qs_settings.token_issuer)
    assert claims.subject == "lite@localhost"
    by_relation = {g.relation: sorted(v.dataset_version for v in g.versions) for g in claims.grants}
    assert by_relation == {
        "blocks": sorted(v.dataset_version for v in synced[:2]),
        "logs": [synced[2].dataset_version],
    }


def test_task_token_pins_the_versions_its_payload_asks_for(conn, qs_settings, synced):
    # GIVEN a claimed task asking for blocks from block 100 on, as relation "b"
    payload = {"grants": [{"dataset": "issued/blocks", "relation": "b", "from_block": 100}]}
    task = tasks.create(conn, task_models.CreateTask(operator="alert_evaluate", payload=payload))
    lease = tasks.claim(conn, task.task_id, worker_id="w", lease_seconds=30)
    store = keys.from_settings(qs_settings)
    # WHEN the worker asks for its token at claim time
    token = issuing.task_token(conn, store, issuer=qs_settings.token_issuer, task_id=lease.task.task_id,
                               attempt=lease.attempt, payload=lease.task.payload)
    # THEN it is a task token for that attempt, pinned to the version covering [100, 200)
    claims = tokens.verify(store, token, audience=tokens.TASK_AUDIENCE, issuer=qs_settings.token_issuer)
    assert (claims.task_id, claims.attempt) == (task.task_id, 1)
    [grant] = claims.grants
    assert grant.relation == "b" and grant.version_ids == (synced[1].dataset_version,)


def test_task_without_grant_requests_gets_no_token(conn, qs_settings):
    store = keys.from_settings(qs_settings)
    assert issuing.task_token(conn, store, issuer="i", task_id=uuid.uuid4(), attempt=1, payload={"x": 1}) is None


def test_malformed_task_grant_request_names_the_field(conn, qs_settings):
    with pytest.raises(errors.GrantError) as caught:
        issuing.task_token(conn, keys.from_settings(qs_settings), issuer="i", task_id=uuid.uuid4(), attempt=1,
                           payload={"grants": [{"dataset": "issued/blocks", "to_block": "soon"}]})
    assert caught.value.details["field"] == "payload.grants[0].to_block"


def test_the_worker_hands_its_operator_the_attempts_task_token(conn, qs_settings, synced, database_url):
    from trace_core.db import pool as pool_mod
    from trace_core.worker import direct, operators, ports

    # GIVEN a claimed task whose payload asks for logs
    payload = {"grants": [{"dataset": "issued/logs"}]}
    task = tasks.create(conn, task_models.CreateTask(operator="alert_evaluate", payload=payload))
    lease = tasks.claim(conn, task.task_id, worker_id="w", lease_seconds=30)
    client = direct.DirectClient(pool_mod.get(database_url))
    reader = operators.Operator(lambda ctx: {}, ports={"query_token"})
    ctx = ports.WorkerPorts(qs_settings, client).context(lease, reader)
    # WHEN the operator (which declared the port) asks for its token
    token = ctx.query_token()
    # THEN it is this attempt's task token, granting exactly the logs version
    claims = tokens.verify(keys.from_settings(qs_settings), token, audience=tokens.TASK_AUDIENCE,
                           issuer=qs_settings.token_issuer)
    assert (claims.task_id, claims.attempt) == (task.task_id, lease.attempt)
    assert [g.version_ids for g in claims.grants] == [(synced[2].dataset_version,)]
