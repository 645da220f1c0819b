"""The schema-migration custom resource handler, against real Postgres and Secrets Manager (moto server)."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import psycopg
import pytest
from trace_cdk import migrations
from trace_core import errors
from trace_core.db import conninfo, migrate


def load_handler() -> ModuleType:
    """The handler as Lambda loads it: handler.py from its asset folder."""
    spec = importlib.util.spec_from_file_location("migrations_handler", migrations.HANDLER_DIR / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(request: str, **extra: Any) -> dict[str, Any]:
    """What the CDK Provider framework passes on (a CloudFormation custom resource request)."""
    return {
        "RequestType": request,
        "ResourceType": migrations.RESOURCE_TYPE,
        "LogicalResourceId": "MigrationsSchema",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/Trace-dev/1",
        "RequestId": str(uuid.uuid4()),
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
                               "MigrationsHash": migrations.migrations_hash()},
        **extra,
    }


@pytest.fixture
def stack_environment(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Factory: the environment the stack gives the handler, for a database URL; returns the secret's ARN."""

    def configure(database_url: str) -> str:
        secrets = boto3.client("secretsmanager", endpoint_url=moto_url, region_name="us-east-1")
        arn = secrets.create_secret(
            Name=f"trace-test-db-{uuid.uuid4().hex[:8]}",
            SecretString=json.dumps({"username": "trace", "password": "s3cret", "port": 5432, "engine": "postgres"}),
        )["ARN"]
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
        monkeypatch.setenv("TRACE_DATABASE_URL", database_url)
        monkeypatch.setenv("TRACE_DATABASE_SECRET_ARN", arn)
        return arn

    return configure


def test_create_applies_every_migration_and_update_applies_only_new_ones(
    make_database: Callable[..., str], stack_environment: Callable[[str], str]
) -> None:
    # GIVEN an empty database and the stack's environment (password in Secrets Manager)
    url = make_database(migrated=False)
    stack_environment(url)
    handler = load_handler()
    # WHEN CloudFormation creates the schema resource
    created = handler.lambda_handler(event("Create"), None)
    # THEN every shipped migration is applied, and the reported version is the newest
    shipped = [m.version for m in migrate.available()]
    assert created["PhysicalResourceId"] == handler.PHYSICAL_ID
    assert created["Data"] == {"Applied": ",".join(map(str, shipped)), "Version": str(shipped[-1])}
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM state.schema_migrations").fetchone()[0] == len(shipped)
    # AND an update (a redeploy) applies nothing more and keeps the same physical id
    updated = handler.lambda_handler(event("Update", PhysicalResourceId=handler.PHYSICAL_ID), None)
    assert updated == {"PhysicalResourceId": handler.PHYSICAL_ID, "Data": {"Applied": "", "Version": str(shipped[-1])}}


def test_delete_never_touches_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a database that cannot even be reached
    monkeypatch.setenv("TRACE_DATABASE_URL", "postgresql://trace@127.0.0.1:1/none")
    # WHEN the stack (or the resource) is deleted
    result = load_handler().lambda_handler(event("Delete", PhysicalResourceId="trace-schema"), None)
    # THEN the handler answers without connecting: removing a stack never drops the schema
    assert result == {"PhysicalResourceId": "trace-schema"}


def test_an_unreadable_secret_fails_with_the_variable_named(
    make_database: Callable[..., str], stack_environment: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_environment(make_database(migrated=False))
    monkeypatch.setenv(
        "TRACE_DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf"
    )
    with pytest.raises(errors.ConfigError) as caught:
        load_handler().lambda_handler(event("Create"), None)
    assert caught.value.details["variable"] == "TRACE_DATABASE_SECRET_ARN"


def test_conninfo_adds_the_password_from_rds_secret_json() -> None:
    info = psycopg.conninfo.conninfo_to_dict(
        conninfo.with_secret(
            "postgresql://trace@db.internal:5432/trace?sslmode=require", json.dumps({"password": "p w"})
        )
    )
    assert info == {"user": "trace", "host": "db.internal", "port": "5432", "dbname": "trace",
                    "sslmode": "require", "password": "p w"}
    with pytest.raises(errors.ConfigError, match="'password'"):
        conninfo.with_secret("postgresql://trace@db/trace", json.dumps({"username": "trace"}))
