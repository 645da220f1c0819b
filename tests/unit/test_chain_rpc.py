"""The JSON-RPC client: results in order, and errors that name the method and carry the node's message.

The node's answers are canned with httpx.MockTransport (a narrow unit test of
error shapes); tests/integration/test_chain_seed.py runs the client against anvil, and
tests/integration/test_chain_rpc.py against a port nobody listens on.
"""

from __future__ import annotations

import json

import httpx
import pytest
from trace_core.chain import errors, info, rpc


def _client(handler) -> rpc.RpcClient:
    return rpc.RpcClient("http://node.test", client=httpx.Client(transport=httpx.MockTransport(handler)))


def test_call_returns_the_result():
    client = _client(lambda request: httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": "0x279f"}))
    assert rpc.to_int(client.call("eth_chainId")) == 10143


def test_call_error_names_method_code_and_node_message():
    # GIVEN a node that answers with a JSON-RPC error WHEN called THEN RpcError carries all three
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        error = {"code": 3, "message": "execution reverted", "data": "0x08c379a0"}
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": error})

    with pytest.raises(errors.RpcError) as caught:
        _client(handler).call("eth_call", [{"to": "0x" + "00" * 20}, "latest"])
    assert caught.value.method == "eth_call"
    assert caught.value.code == 3
    assert "execution reverted" in caught.value.rpc_message
    assert str(caught.value).startswith("JSON-RPC eth_call at http://node.test failed: execution reverted")


def test_batch_results_follow_the_calls_order_whatever_the_answer_order():
    def handler(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        answers = [{"jsonrpc": "2.0", "id": c["id"], "result": c["params"][0]} for c in calls]
        return httpx.Response(200, json=list(reversed(answers)))

    assert _client(handler).batch([("echo", ["a"]), ("echo", ["b"]), ("echo", ["c"])]) == ["a", "b", "c"]


def test_batch_error_names_the_failing_call():
    def handler(request: httpx.Request) -> httpx.Response:
        calls = json.loads(request.content)
        answers = [{"jsonrpc": "2.0", "id": c["id"], "result": "0x1"} for c in calls]
        answers[1] = {"jsonrpc": "2.0", "id": calls[1]["id"], "error": {"code": -32003, "message": "nonce too low"}}
        return httpx.Response(200, json=answers)

    with pytest.raises(errors.RpcError) as caught:
        _client(handler).batch([("eth_blockNumber", []), ("eth_sendTransaction", [{}])])
    assert caught.value.method == "eth_sendTransaction (call #1 of the batch)"
    assert "nonce too low" in str(caught.value)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(500, text="boom"), "HTTP 500: boom"),
        (httpx.Response(200, text="<html>"), "answer is not JSON"),
        (httpx.Response(200, json={"jsonrpc": "2.0", "id": 1}), "neither result nor error"),
    ],
)
def test_malformed_answers_fail_naming_the_method(response, expected):
    with pytest.raises(errors.RpcError) as caught:
        _client(lambda request: response).call("eth_blockNumber")
    assert caught.value.method == "eth_blockNumber"
    assert expected in str(caught.value)


def test_chain_info_is_missing_until_seeded(tmp_path):
    with pytest.raises(errors.ChainError) as caught:
        info.read(tmp_path)
    assert "trace-lite chain seed" in caught.value.details["fix"]


def test_chain_info_rejects_a_damaged_file(tmp_path):
    (tmp_path / "chain.json").write_text('{"seed": 1}')
    with pytest.raises(errors.ChainError, match="not a valid chain description"):
        info.read(tmp_path)
