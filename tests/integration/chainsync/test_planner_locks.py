"""The planner holds no row lock while a node answers: a slow RPC node, a real JSON-RPC server over HTTP
that checks, during each call, that another transaction can lock the job's rows at once (NOWAIT)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core.chainsync import chain_reader, errors, jobs, planner

from tests.integration.chainsync.test_planner import Chain, make_spec, ranges, run_range, scheduled, stream

SLOW_SECONDS = 0.2


class SlowNode:
    """A JSON-RPC node serving ``chain``'s hashes slowly; before answering each call it records whether
    the job's rows (``state.jobs`` and ``state.sync_streams``) could be locked by someone else right now."""

    def __init__(self, database_url: str, chain: Chain) -> None:
        self.database_url, self.chain = database_url, chain
        self.job_id: Any = None
        self.calls: list[tuple[str, list[Any], bool]] = []  # (method, params, rows free to lock during the call)
        self.during_call: Callable[[], None] | None = None  # run once, inside the next call
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.calls.append((request["method"], request["params"], node.rows_free()))
                hook, node.during_call = node.during_call, None
                if hook is not None:
                    hook()
                time.sleep(SLOW_SECONDS)
                body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": node.answer(request)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, request: dict[str, Any]) -> Any:
        if request["method"] == "eth_blockNumber":
            return hex(self.chain.head)
        number = int(request["params"][0], 16)
        return {"number": hex(number), "hash": self.chain.block_hash(number)}

    def rows_free(self) -> bool:
        with psycopg.connect(self.database_url) as probe:
            probe.execute("SET lock_timeout = '100ms'")
            try:
                probe.execute("SELECT 1 FROM state.jobs WHERE job_id = %s FOR UPDATE NOWAIT", (self.job_id,))
                probe.execute("SELECT 1 FROM state.sync_streams WHERE job_id = %s FOR UPDATE NOWAIT", (self.job_id,))
            except psycopg.errors.LockNotAvailable:
                return False
            finally:
                probe.rollback()
        return True

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def database_url(make_database) -> str:
    return make_database()


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as c:
        yield c


@pytest.fixture
def make_node(database_url: str) -> Iterator[Callable[[Chain], SlowNode]]:
    started: list[SlowNode] = []

    def make(chain: Chain) -> SlowNode:
        started.append(SlowNode(database_url, chain))
        return started[-1]

    yield make
    for node in started:
        node.stop()


def blocks_only(name: str, **changes: str):
    return make_spec(name, **{"[blocks, logs]": "[blocks]", **changes})


def test_repair_holds_no_lock_while_the_node_answers(conn, make_node):
    # GIVEN a job with [0, 30) and [30, 60) committed, then a reorg from block 50
    chain = Chain()
    job_id = jobs.apply(conn, blocks_only("locks-a")).job_id
    for rng in scheduled(conn, job_id):
        run_range(conn, rng, chain)
    chain.fork_from = 50
    conn.commit()
    node = make_node(chain)
    node.job_id = job_id
    # WHEN repair asks a slow node for the hashes
    assert planner.repair(conn, job_id, chain_reader.RpcChainReader([node.url])) == 1
    # THEN during every call the job's rows were free for anyone else to lock
    assert node.calls and all(free for _, _, free in node.calls), node.calls
    # AND the repair itself is what it always was: [30, 60) superseded, the cursor back at 30
    assert [(r["range_start"], r["generation"], r["status"]) for r in ranges(conn, job_id) if r["range_start"] == 30] \
        == [(30, 0, "superseded"), (30, 1, "scheduled")]
    assert stream(conn, job_id)["cursor"] == 30


def test_the_scheduled_pass_holds_no_lock_while_the_node_answers(conn, make_node, database_url):
    # GIVEN a follow_head job whose node is slow, with [0, 30) committed
    chain = Chain()
    chain.head = 40
    node = make_node(chain)
    mode = "{type: follow_head, from_block: 0, confirmations: 5, use_finalized_tag: false}"
    spec = blocks_only("locks-b", mode=mode, **{'"http://127.0.0.1:1"': f'"{node.url}"'})
    job_id = jobs.apply(conn, spec).job_id
    node.job_id = job_id
    run_range(conn, scheduled(conn, job_id)[0], chain)
    conn.commit()
    chain.head = 70
    node.calls.clear()
    # WHEN the scheduled pass runs (repair's hash check and the safe head, both from the slow node)
    with psycopg.connect(database_url, row_factory=dict_row) as pass_conn:
        results = planner.scheduled_tick(pass_conn)
    # THEN it planned the next range, and no call found the job's rows locked
    assert results["locks-b"].scheduled == 1
    assert {method for method, _, _ in node.calls} == {"eth_getBlockByNumber", "eth_blockNumber"}
    assert all(free for _, _, free in node.calls), node.calls


def test_a_range_committed_while_repair_asks_the_node_is_decided_on_under_the_lock(conn, make_node, database_url):
    # GIVEN [0, 30) committed and [30, 60) extracted but not yet committed, then a reorg from block 10
    chain = Chain()
    job_id = jobs.apply(conn, blocks_only("locks-c")).job_id
    first, second = scheduled(conn, job_id)
    run_range(conn, first, chain)
    chain.fork_from = 10
    conn.commit()
    node = make_node(chain)
    node.job_id = job_id

    def commit_second() -> None:  # its task completes (from the old fork) while repair waits on the node
        with psycopg.connect(database_url, row_factory=dict_row) as other:
            run_range(other, second, Chain())
            other.commit()

    node.during_call = commit_second
    # WHEN repair runs
    superseded = planner.repair(conn, job_id, chain_reader.RpcChainReader([node.url]))
    # THEN it decided on the job as it was under the lock: both ranges are off the canonical chain
    assert superseded == 2
    assert [(r["range_start"], r["status"]) for r in ranges(conn, job_id)
            if r["generation"] == 0 and r["range_start"] < 60] == [(0, "superseded"), (30, "superseded")]
    assert stream(conn, job_id)["cursor"] == 0
    # AND it asked the node for the block under the cursor it read, then under the moved one
    assert [params[0] for _, params, _ in node.calls] == [hex(29), hex(59)]
    assert all(free for _, _, free in node.calls), node.calls


def test_repair_refuses_to_run_inside_a_transaction(conn):
    job_id = jobs.apply(conn, blocks_only("locks-d")).job_id
    conn.execute("SELECT 1")  # a transaction is open
    with pytest.raises(errors.ChainSyncError, match="call it outside a transaction"):
        planner.repair(conn, job_id, Chain())
