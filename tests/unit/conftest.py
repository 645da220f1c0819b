"""Unit tests have no network: no test under tests/unit can open a socket (pytest-socket's guard).

The guard goes up before each test's fixtures are set up, so a unit test that reaches for Postgres,
moto, anvil or an RPC node fails at once with SocketBlockedError: a test that needs a real component
belongs in tests/integration. Unix sockets are refused too (no unit test needs one).
"""

from __future__ import annotations

import pytest
from pytest_socket import disable_socket


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    disable_socket(allow_unix_socket=False)
