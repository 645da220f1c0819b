"""`trace-lite apply` checks every RPC of the pool against the spec's chain_id (real anvil, real Postgres)."""

from __future__ import annotations

from pathlib import Path

from trace_core.lite import procs

KEY = "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI"
SPEC = """
name: {name}
chain_id: {chain_id}
rpc: {{urls: [{urls}]}}
datasets: [blocks]
mode: {{type: fixed_target, from_block: 0, to_block: 10}}
"""


def _spec(tmp_path: Path, name: str, chain_id: int, *urls: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, chain_id=chain_id, urls=", ".join(f'"{u}"' for u in urls)))
    return str(path)


def _job_count(db, name: str) -> int:
    return db.execute("SELECT count(*) AS n FROM state.jobs WHERE name = %s", (name,)).fetchone()["n"]


def test_a_chain_id_the_rpc_does_not_serve_is_refused_naming_both(cli, db, anvil_url, tmp_path):
    # GIVEN a spec saying chain 1 whose RPC is the local chain (10143)
    spec = _spec(tmp_path, "wrong-chain", 1, anvil_url)
    # WHEN it is applied
    code, _, err = cli("apply", "--file", spec)
    # THEN apply refuses, naming both chain ids and the URL, and writes nothing
    assert code == 1
    assert "the spec says 1" in err and "serves chain 10143" in err and anvil_url in err
    assert "fix: set chain_id: 10143" in err
    assert _job_count(db, "wrong-chain") == 0


def test_an_rpc_that_does_not_answer_is_named_with_its_key_masked(cli, db, anvil_url, tmp_path):
    # GIVEN a pool whose second URL (carrying an API key) has nothing listening
    dead = f"http://127.0.0.1:{procs.free_port()}/v2/{KEY}"
    spec = _spec(tmp_path, "dead-rpc", 10143, anvil_url, dead)
    # WHEN it is applied
    code, out, err = cli("apply", "--file", spec)
    # THEN the error names that URL, key masked, in two lines; nothing is written
    assert code == 1
    assert "rpc.urls[1]" in err and "/v2/***" in err and KEY not in err + out
    assert len(err.strip().splitlines()) == 2
    assert _job_count(db, "dead-rpc") == 0


def test_a_pool_that_serves_the_chain_is_applied(cli, db, anvil_url, tmp_path):
    # GIVEN a spec whose every RPC serves its chain WHEN applied twice THEN created, then unchanged
    spec = _spec(tmp_path, "right-chain", 10143, anvil_url, anvil_url)
    code, out, _ = cli("apply", "--file", spec)
    assert code == 0 and "job right-chain: created" in out and "chain 10143" in out
    code, out, _ = cli("apply", "--file", spec)
    assert code == 0 and "job right-chain: unchanged" in out
    assert _job_count(db, "right-chain") == 1
