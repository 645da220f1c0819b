"""The state database's connection string for a deployable.

Locally ``TRACE_DATABASE_URL`` is the whole story. On AWS the URL carries no
password: ``TRACE_DATABASE_SECRET_ARN`` names the RDS-managed Secrets Manager
secret whose ``password`` is added here, once per process.
"""

from __future__ import annotations

import functools
import json

import botocore.exceptions
import psycopg

from trace_core import aws, errors
from trace_core.settings import Settings


def with_secret(database_url: str, secret_string: str | None) -> str:
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


def resolve(settings: Settings) -> str:
    """The connection string to use: the URL, plus the secret's password when a secret is configured."""
    if not settings.database_url:
        raise errors.ConfigError(
            "TRACE_DATABASE_URL is unset: the state database is needed (run `trace-lite up` locally)",
            variable="TRACE_DATABASE_URL",
        )
    if not settings.database_secret_arn:
        return settings.database_url
    return _resolved(settings.database_url, settings.database_secret_arn, settings)


@functools.lru_cache(maxsize=4)
def _resolved(database_url: str, secret_arn: str, settings: Settings) -> str:
    client = aws.client("secretsmanager", settings)
    try:
        secret = client.get_secret_value(SecretId=secret_arn)["SecretString"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise errors.ConfigError(
            f"cannot read the database secret {secret_arn}: {exc}", variable="TRACE_DATABASE_SECRET_ARN"
        ) from exc
    return with_secret(database_url, secret)
