"""Root of the test harness: scrub the environment, then load the real-component fixtures."""

from __future__ import annotations

import os
import sys

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


# The ingest tests run Cryo inside this process: end it as every process of ours that ran Cryo ends
# (docs/decisions/1302), so Cryo's threads can never crash pytest's exit after a green run.
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    from trace_core.worker import process_exit

    if "cryo" in sys.modules and _EXIT_STATUS in config.stash:
        process_exit.end(config.stash[_EXIT_STATUS])


_EXIT_STATUS = pytest.StashKey[int]()
