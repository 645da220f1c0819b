"""CloudFormation custom resource (through the CDK Provider framework): apply trace_core's migrations.

Runs on Create and on every Update (the stack changes the resource's
``MigrationsHash`` property whenever a migration file changes). Delete does
nothing: a stack removal never drops the schema. A failing migration fails the
deployment with the migration's message; the schema stays at the previous
version (each migration runs in its own transaction).
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import psycopg
from trace_core import aws, errors
from trace_core import settings as settings_mod
from trace_core.db import migrate

PHYSICAL_ID = "trace-schema"


def conninfo(database_url: str, secret_string: str | None) -> str:
    """``database_url`` with the password from an RDS secret (JSON with ``password``) added."""
    if secret_string is None:
        return database_url
    try:
        password = json.loads(secret_string)["password"]
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.ConfigError(
            "the database secret is not RDS JSON with a 'password' field", variable="TRACE_DATABASE_SECRET_ARN"
        ) from exc
    return psycopg.conninfo.make_conninfo(database_url, password=password)


def _database(settings: settings_mod.Settings) -> str:
    if not settings.database_url:
        raise errors.ConfigError("TRACE_DATABASE_URL is unset", variable="TRACE_DATABASE_URL")
    secret = None
    if settings.database_secret_arn:
        client = aws.client("secretsmanager", settings)
        try:
            secret = client.get_secret_value(SecretId=settings.database_secret_arn)["SecretString"]
        except botocore.exceptions.BotoCoreError as exc:
            raise _unreadable(settings.database_secret_arn, exc) from exc
        except botocore.exceptions.ClientError as exc:
            raise _unreadable(settings.database_secret_arn, exc) from exc
    return conninfo(settings.database_url, secret)


def _unreadable(arn: str, exc: Exception) -> errors.ConfigError:
    return errors.ConfigError(
        f"cannot read the database secret {arn}: {exc}", variable="TRACE_DATABASE_SECRET_ARN"
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    url = _database(settings_mod.load())
    applied = migrate.apply(url)
    return {
        "PhysicalResourceId": PHYSICAL_ID,
        "Data": {"Applied": ",".join(str(v) for v in applied), "Version": str(migrate.current_version(url))},
    }
