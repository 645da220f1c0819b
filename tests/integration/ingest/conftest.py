from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.datasets.fixtures import conn, make_attempt, make_s3_store, s3_client  # noqa: F401
from tests.integration.ingest import chain as chain_mod

BLOCKS = 60


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chain_mod.Chain]:
    """anvil with BLOCKS seeded blocks (transfers and token logs), for this module; stopped after it."""
    yield from chain_mod.start_seeded(tmp_path_factory.mktemp("chain"), BLOCKS)


@pytest.fixture
def monad_node(chain: chain_mod.Chain) -> Iterator[chain_mod.Proxy]:
    """The chain behind a Monad-like front: no trace_*, eth_getLogs capped at 10 blocks."""
    yield from chain_mod.monad_proxy(chain.url, max_log_blocks=10)
