"""boto3 clients built from settings: the only place that knows about endpoints and regions.

Against a local endpoint (moto server, LocalStack) with no credentials in the
environment, static placeholder credentials are used: the local APIs accept
any, and nothing secret is involved.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

from trace_core import errors
from trace_core.settings import Settings

_LOCAL_PLACEHOLDER = "trace-lite"


def require_endpoint(settings: Settings) -> None:
    """In Lite, refuse to go on without a local AWS endpoint: never fall back to public AWS.

    A Lite process that lost its endpoint (the stack's state has no moto entry, AWS_ENDPOINT_URL unset)
    would otherwise aim its clients at the real AWS endpoints, with whatever credentials the machine has.
    """
    if settings.profile == "lite" and not settings.aws_endpoint_url:
        raise errors.ComponentError(
            "no AWS endpoint: Lite calls only a local S3/SQS (moto server or LocalStack), and none is known "
            "(the stack has no moto running and AWS_ENDPOINT_URL is unset)",
            component="moto",
            fix="run `trace-lite up`, or set AWS_ENDPOINT_URL to your LocalStack (TRACE_PROFILE=aws for real AWS)",
        )


def session(settings: Settings) -> boto3.session.Session:
    require_endpoint(settings)
    kwargs: dict[str, Any] = {"region_name": settings.aws_region}
    if settings.aws_endpoint_url and not (
        os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
    ):
        kwargs.update(aws_access_key_id=_LOCAL_PLACEHOLDER, aws_secret_access_key=_LOCAL_PLACEHOLDER)
    return boto3.session.Session(**kwargs)


def client(service: str, settings: Settings, **config: Any) -> Any:
    """A boto3 client for ``service`` at the configured endpoint (AWS itself when unset)."""
    return session(settings).client(
        service,  # type: ignore[call-overload]
        endpoint_url=settings.aws_endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, **config),
    )


def s3_client(settings: Settings) -> Any:
    """The object store's S3 client: request bodies are not hashed again for the signature.

    Every PUT of the object store carries its own ``ChecksumSHA256``, which S3 verifies; botocore
    already skips the signature's body hash over HTTPS when a checksum is sent, but over a local
    endpoint's plain HTTP (moto server) it would read and hash every body a second time.
    """
    return client("s3", settings, s3={"payload_signing_enabled": False})
