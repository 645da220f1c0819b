"""A Lite process never reaches public AWS: without a local endpoint it refuses, naming the fix."""

from __future__ import annotations

import pytest
from trace_core import aws, errors
from trace_core.settings import Settings


@pytest.mark.parametrize("build", [lambda s: aws.client("s3", s), aws.s3_client, lambda s: aws.client("sqs", s),
                                   aws.session])
def test_lite_without_an_endpoint_builds_no_aws_client(build) -> None:
    settings = Settings(profile="lite", aws_endpoint_url=None)
    with pytest.raises(errors.ComponentError, match="no AWS endpoint") as caught:
        build(settings)
    assert "trace-lite up" in caught.value.details["fix"]


def test_lite_with_an_endpoint_and_the_aws_profile_build_clients() -> None:
    local = aws.client("s3", Settings(profile="lite", aws_endpoint_url="http://127.0.0.1:5999"))
    assert local.meta.endpoint_url == "http://127.0.0.1:5999"
    deployed = aws.client("s3", Settings(profile="aws", aws_endpoint_url=None, aws_region="eu-west-1"))
    assert deployed.meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"

