"""Root of the test harness: scrub the environment, then load the real-component fixtures."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures.components", "tests.fixtures.chain"]


def _scrub() -> None:
    """No real credentials or stray Trace settings reach any test."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "TRACE_")) and not key.startswith("TRACE_TEST_"):
            del os.environ[key]
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_NAMESPACE="TraceTest",
        POWERTOOLS_SERVICE_NAME="trace-test",
        POWERTOOLS_TRACE_DISABLED="true",
    )


_scrub()


@pytest.fixture(autouse=True)
def _clean_settings_cache():
    from trace_core import settings

    settings.get.cache_clear()
    yield
    settings.get.cache_clear()
