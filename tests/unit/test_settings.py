from __future__ import annotations

import pydantic
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
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        loaded.chain_id = 1  # type: ignore[misc]


# ---------------------------------------------------------------- settings per deployable (trace_core.platform)


def test_a_setting_is_read_from_its_trace_variable_or_its_standard_one():
    assert settings.variable("database_url") == "TRACE_DATABASE_URL"
    assert settings.variable("aws_endpoint_url") == "AWS_ENDPOINT_URL"
    assert settings.variable("aws_region") == "AWS_DEFAULT_REGION"
    with pytest.raises(errors.ConfigError):
        settings.variable("database_uri")


def test_a_deployable_reads_only_its_declared_settings():
    # GIVEN the sink function's environment: its own settings and one that belongs to the Query Service
    env = {"TRACE_DEPLOYABLE": "sink", "TRACE_DATABASE_URL": "postgresql://x", "TRACE_QUERY_PORT": "8080"}
    # WHEN it loads THEN the foreign variable is refused, naming it and the deployable
    with pytest.raises(errors.ConfigError) as caught:
        settings.load(env)
    assert caught.value.details["variable"] == "TRACE_QUERY_PORT"
    assert "of sink" in str(caught.value)
    # AND without it the sink reads its own
    del env["TRACE_QUERY_PORT"]
    loaded = settings.load(env)
    assert (loaded.deployable, loaded.database_url, loaded.query_port) == ("sink", "postgresql://x", 0)


def test_an_unknown_deployable_is_refused_listing_the_known_ones():
    with pytest.raises(errors.ConfigError) as caught:
        settings.load({"TRACE_DEPLOYABLE": "sinc"})
    assert caught.value.details["variable"] == "TRACE_DEPLOYABLE"
    assert "sink" in str(caught.value) and "query" in str(caught.value)


def test_the_environment_of_a_deployable_round_trips_to_its_settings():
    # GIVEN the CLI's settings (every setting read), as Lite's outer shell has them
    outer = settings.load({
        "TRACE_DATABASE_URL": "postgresql://x", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "TRACE_QUERY_PORT": "8080", "TRACE_EMIT_METRICS": "true",
    })
    # WHEN the worker's environment is rendered from them
    env = settings.environment(outer, "worker")
    # THEN it holds its declared settings only, its name, and loads back to the same values
    assert env["TRACE_DEPLOYABLE"] == "worker" and env["TRACE_EMIT_METRICS"] == "true"
    assert "TRACE_QUERY_PORT" not in env and "TRACE_DATABASE_SECRET_ARN" not in env  # not its own; unset
    loaded = settings.load(env)
    for name in settings.declared("worker"):
        assert getattr(loaded, name) == getattr(outer, name), name
