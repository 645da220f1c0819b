from __future__ import annotations

import pytest

from trace_core import errors, settings


def test_defaults_are_the_lite_profile():
    # GIVEN an empty environment WHEN settings load THEN the embedded Lite defaults apply
    loaded = settings.load({})
    assert loaded.chain_id == 10143
    assert loaded.database_url is None
    assert loaded.queue_driver == "pgqueue"


def test_standard_aws_variables_are_read_as_they_are():
    loaded = settings.load({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert loaded.aws_endpoint_url == "http://127.0.0.1:5000"
    assert loaded.aws_region == "eu-west-1"


def test_unknown_trace_variable_fails_naming_it():
    with pytest.raises(errors.ConfigError) as info:
        settings.load({"TRACE_DATABSE_URL": "postgresql://x"})
    assert info.value.details["variable"] == "TRACE_DATABSE_URL"
    assert "TRACE_DATABASE_URL" in str(info.value)  # the expected names are listed


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TRACE_CHAIN_ID", "monad", "integer"),
        ("TRACE_CHAIN_ID", "0", "greater than 0"),
        ("TRACE_QUEUE_DRIVER", "kafka", "'pgqueue' or 'sqs'"),
        ("TRACE_MOTO_PORT", "70000", "less than or equal to 65535"),
        ("TRACE_WORKER_CRYO_THREADS", "0", "greater than or equal to 1"),
    ],
)
def test_malformed_value_fails_with_variable_and_expectation(variable, value, expected):
    with pytest.raises(errors.ConfigError) as info:
        settings.load({variable: value})
    assert info.value.details["variable"] == variable
    assert expected in str(info.value)


def test_test_harness_variables_are_not_settings():
    assert settings.load({"TRACE_TEST_DATABASE_URL": "postgresql://x"}).database_url is None


def test_settings_are_frozen():
    loaded = settings.load({})
    with pytest.raises(Exception):
        loaded.chain_id = 1  # type: ignore[misc]
