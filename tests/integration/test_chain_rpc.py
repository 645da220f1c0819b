"""The JSON-RPC client over a real socket, to a node that is not there (canned answers: tests/unit/)."""

from __future__ import annotations

import pytest
from trace_core.chain import errors, rpc
from trace_core.lite import procs


def test_unreachable_node_fails_with_no_code():
    # GIVEN a port nobody listens on WHEN called THEN the error says so (and has no JSON-RPC code)
    url = f"http://{procs.HOST}:{procs.free_port()}"
    with rpc.RpcClient(url, timeout=2.0) as client, pytest.raises(errors.RpcError) as caught:
        client.call("eth_chainId")
    assert caught.value.code is None
    assert "ConnectError" in str(caught.value)
