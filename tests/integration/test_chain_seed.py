"""Seeding on real anvil: deterministic chains, exact balances and stakes, cache hits that keep history.

Small chains keep it quick: fresh anvils get 120 blocks; the shared
``seeded_chain`` fixture (400 blocks, cached) answers the read-only checks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest
from trace_core.chain import abi, cache, errors, info, rpc, seeder
from trace_core.cli import main
from trace_core.lite import seeded_node
from typer.testing import CliRunner

GENESIS = ["--timestamp", str(seeded_node.GENESIS_TIMESTAMP)]
SMALL = 120


def _call(client: rpc.RpcClient, to: str, signature: str, *args: Any, block: str | int = "latest") -> str:
    tag = block if isinstance(block, str) else rpc.quantity(block)
    return client.call("eth_call", [{"to": to, "data": abi.encode_call(signature, *args)}, tag])


def _uint(client: rpc.RpcClient, to: str, signature: str, *args: Any, block: str | int = "latest") -> int:
    return abi.decode(["uint256"], _call(client, to, signature, *args, block=block))[0]


def _fingerprint(url: str, chain: info.ChainInfo) -> dict[str, Any]:
    """Everything a user of the chain observes: block hashes, per-block txs, all logs, final balances."""
    with rpc.RpcClient(url) as client:
        blocks = client.batch(
            [("eth_getBlockByNumber", [rpc.quantity(n), False]) for n in range(chain.last_block + 1)]
        )
        logs = client.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": rpc.quantity(chain.last_block)}])
        holders = [*chain.pool, chain.deployer]
        token = [_uint(client, chain.token.address, "balanceOf(address)", h) for h in holders]
        native = [rpc.to_int(b) for b in client.batch([("eth_getBalance", [h, "latest"]) for h in holders])]
        stakes = [
            _uint(client, abi.STAKING_ADDRESS, "getValidatorStake(uint64)", v.validator_id)
            for v in chain.staking.validators
        ]
    return {
        "hashes": [b["hash"] for b in blocks],
        "txs_per_block": [len(b["transactions"]) for b in blocks],
        "logs": [(log["blockNumber"], log["address"], log["topics"], log["data"]) for log in logs],
        "token": token,
        "native": native,
        "stakes": stakes,
    }


@pytest.fixture(scope="module")
def twin_chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Seed 11 twice and seed 12 once, each on its own fresh anvil with the same genesis."""
    from trace_core.lite import anvil, procs

    prints: dict[str, dict[str, Any]] = {}
    for label, seed in (("first", 11), ("second", 11), ("other", 12)):
        port = procs.free_port()
        proc = anvil.start(port, tmp_path_factory.mktemp("twins") / f"{label}.log", extra=GENESIS)
        try:
            chain = seeder.seed(anvil.url(port), seed=seed, blocks=SMALL)
            prints[label] = {"info": chain, **_fingerprint(anvil.url(port), chain)}
        finally:
            procs.stop(proc.pid)
            proc.wait(timeout=10)
    return prints


def test_same_seed_gives_the_same_chain(twin_chains):
    # GIVEN two fresh anvils seeded with the same seed and size
    first, second = twin_chains["first"], twin_chains["second"]
    # THEN blocks (hashes included), transactions per block, logs and final balances are identical
    for aspect in ("hashes", "txs_per_block", "logs", "token", "native", "stakes"):
        assert first[aspect] == second[aspect], aspect
    assert first["info"].model_dump(exclude={"rpc_url"}) == second["info"].model_dump(exclude={"rpc_url"})
    assert len(first["hashes"]) == SMALL + 1 and sum(first["txs_per_block"]) == first["info"].transactions


def test_different_seed_gives_a_different_chain(twin_chains):
    first, other = twin_chains["first"], twin_chains["other"]
    assert first["hashes"][0] == other["hashes"][0]  # same genesis
    assert first["hashes"][1:] != other["hashes"][1:]
    assert first["txs_per_block"] != other["txs_per_block"]
    assert first["token"] != other["token"]


def test_seeded_chain_describes_itself(seeded_chain):
    chain = seeded_chain.info
    assert (chain.first_block, chain.last_block, chain.end_block) == (1, 400, 401)
    assert chain.rpc_url == seeded_chain.url and chain.chain_id == 10143
    assert chain.historical_state
    with rpc.RpcClient(seeded_chain.url) as client:
        assert rpc.to_int(client.call("eth_blockNumber")) == chain.last_block
        assert client.call("eth_getBlockByNumber", ["latest", False])["hash"] == chain.last_block_hash
        assert client.call("eth_getCode", [chain.token.address, "latest"]) != "0x"
        assert client.call("eth_getCode", [abi.STAKING_ADDRESS, "latest"]) != "0x"
        deploy = client.call("eth_getBlockByNumber", [rpc.quantity(chain.token.deploy_block), True])
        created = [tx for tx in deploy["transactions"] if tx["to"] is None]
        receipt = client.call("eth_getTransactionReceipt", [created[0]["hash"]])
        assert receipt["contractAddress"] == chain.token.address


def _token_ledger(logs: list[dict[str, Any]], token: str) -> tuple[dict[str, int], dict[int, int]]:
    """Balances and total supply per block, rebuilt from Transfer logs alone (exact integers)."""
    transfer = abi.topic(abi.TOKEN_EVENTS["Transfer"])
    balances: dict[str, int] = defaultdict(int)
    supply_at: dict[int, int] = {}
    supply = 0
    for log in logs:
        if log["address"] != token or log["topics"][0] != transfer:
            continue
        sender, receiver = abi.topic_address(log["topics"][1]), abi.topic_address(log["topics"][2])
        (value,) = abi.decode(["uint256"], log["data"])
        balances[sender] -= value
        balances[receiver] += value
        supply += value if sender == abi.ZERO_ADDRESS else 0
        supply -= value if receiver == abi.ZERO_ADDRESS else 0
        supply_at[rpc.to_int(log["blockNumber"])] = supply
    return balances, supply_at


def test_token_balances_and_supply_agree_with_transfer_logs_exactly(seeded_chain):
    # GIVEN the seeded chain WHEN balances are rebuilt from Transfer logs THEN they equal balanceOf, to the wei
    chain = seeded_chain.info
    with rpc.RpcClient(seeded_chain.url) as client:
        logs = client.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": chain.token.address}])
        balances, supply_at = _token_ledger(logs, chain.token.address)
        whale = _uint(client, chain.token.address, "balanceOf(address)", chain.token.whale)
        assert whale >= 2**128
        assert whale == balances[chain.token.whale]
        for holder in chain.pool:
            assert _uint(client, chain.token.address, "balanceOf(address)", holder) == balances[holder]
        assert _uint(client, chain.token.address, "totalSupply()") == supply_at[max(supply_at)]
        # Historical state survived the cache: totalSupply at old blocks matches the logs up to them.
        for block in (2, 57, 200, 333):
            expected = supply_at[max(b for b in supply_at if b <= block)]
            assert _uint(client, chain.token.address, "totalSupply()", block=block) == expected
    top = sorted((balances[h] for h in chain.pool), reverse=True)[:10]
    assert len(set(top)) == 10  # distinct, so "top N holders" has one answer
    assert min(balances[h] for h in chain.pool) >= 0


def test_staking_views_equal_delegations_minus_undelegations(seeded_chain):
    # GIVEN the staking logs WHEN summed per validator THEN each equals getValidatorStake, exactly
    chain = seeded_chain.info
    topics = {name: abi.topic(sig) for name, sig in abi.STAKING_EVENTS.items()}
    with rpc.RpcClient(seeded_chain.url) as client:
        logs = client.call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": abi.STAKING_ADDRESS}])
        per_validator: dict[int, int] = defaultdict(int)
        per_delegator: dict[tuple[int, str], int] = defaultdict(int)
        for log in logs:
            if log["topics"][0] == topics["Delegate"]:
                amount, _ = abi.decode(["uint256", "uint64"], log["data"])
            elif log["topics"][0] == topics["Undelegate"]:
                _, amount, _ = abi.decode(["uint8", "uint256", "uint64"], log["data"])
                amount = -amount
            else:
                continue
            validator_id = abi.topic_int(log["topics"][1])
            per_validator[validator_id] += amount
            per_delegator[(validator_id, abi.topic_address(log["topics"][2]))] += amount
        stakes = {
            v.validator_id: _uint(client, abi.STAKING_ADDRESS, "getValidatorStake(uint64)", v.validator_id)
            for v in chain.staking.validators
        }
        assert stakes == dict(per_validator)
        for (validator_id, delegator), amount in sorted(per_delegator.items())[:40]:
            stake = _uint(client, abi.STAKING_ADDRESS, "getDelegatorStake(uint64,address)", validator_id, delegator)
            assert stake == amount
        epoch, in_delay = abi.decode(["uint64", "bool"], _call(client, abi.STAKING_ADDRESS, "getEpoch()"))
    assert epoch == chain.last_block // chain.staking.epoch_blocks and not in_delay
    assert max(stakes.values()) > 2 * min(stakes.values())  # skewed: concentration metrics have something to say
    seen = Counter(log["topics"][0] for log in logs)
    for name in ("ValidatorCreated", "Delegate", "Undelegate", "Withdraw", "ClaimRewards", "EpochChanged"):
        assert seen[topics[name]] > 0, name
    assert seen[topics["ValidatorCreated"]] == len(chain.staking.validators)
    assert seen[topics["EpochChanged"]] == epoch


def test_traces_are_served_over_the_whole_range(seeded_chain):
    with rpc.RpcClient(seeded_chain.url) as client:
        for block in (1, 3, seeded_chain.info.last_block):
            assert client.call("trace_block", [rpc.quantity(block)])
            assert client.call("debug_traceBlockByNumber", [rpc.quantity(block), {"tracer": "callTracer"}])


def test_cache_hit_reproduces_the_chain_with_history(tmp_path, make_anvil):
    # GIVEN an empty cache WHEN the same chain is started twice THEN the second comes from the cache, identical
    cache_dir, logs = tmp_path / "cache", tmp_path / "logs"
    built = seeded_node.start_seeded(seed=5, blocks=60, cache_dir=cache_dir, log_dir=logs)
    try:
        built_print = _fingerprint(built.url, built.info)
    finally:
        built.stop()
    loaded = seeded_node.start_seeded(seed=5, blocks=60, cache_dir=cache_dir, log_dir=logs)
    try:
        assert (built.from_cache, loaded.from_cache) == (False, True)
        assert _fingerprint(loaded.url, loaded.info) == built_print
        with rpc.RpcClient(loaded.url) as client:
            assert seeder.has_historical_state(client, loaded.info.deployer, 1)
    finally:
        loaded.stop()
    # AND a live seed of a fresh anvil with the same genesis yields that very chain
    live_url = make_anvil(extra=GENESIS)
    live = seeder.seed(live_url, seed=5, blocks=60)
    assert live.cache_key == loaded.info.cache_key
    assert _fingerprint(live_url, live) == built_print


def test_a_damaged_cache_entry_is_rebuilt(tmp_path):
    cache_dir, logs = tmp_path / "cache", tmp_path / "logs"
    first = seeded_node.start_seeded(seed=6, blocks=20, cache_dir=cache_dir, log_dir=logs)
    first.stop()
    (cache.entry(cache_dir, first.info.cache_key) / cache.INFO_FILE).write_text("{not json")
    again = seeded_node.start_seeded(seed=6, blocks=20, cache_dir=cache_dir, log_dir=logs)
    try:
        assert not again.from_cache
        assert again.info.last_block_hash == first.info.last_block_hash
    finally:
        again.stop()


def test_seeding_a_used_chain_fails_unless_it_is_this_very_chain(make_anvil, tmp_path):
    url = make_anvil()
    chain = seeder.seed(url, seed=3, blocks=15, cache_dir=tmp_path / "chains")
    # Seeding the same chain again is recognised and returns it without mining.
    assert seeder.seed(url, seed=3, blocks=15, cache_dir=tmp_path / "chains") == chain
    with pytest.raises(errors.SeedError) as caught:
        seeder.seed(url, seed=4, blocks=15, cache_dir=tmp_path / "chains")
    assert "already has 15 blocks" in str(caught.value)
    assert "fresh" in caught.value.details["fix"]


def test_cli_seeds_the_configured_chain_and_records_it(make_anvil, tmp_path):
    # GIVEN a fresh chain at TRACE_RPC_URL WHEN `trace-lite chain seed` runs THEN chain.json describes it
    url = make_anvil()
    env = {"TRACE_RPC_URL": url, "TRACE_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    result = runner.invoke(main.app, ["chain", "seed", "--seed", "9", "--blocks", "25"], env=env)
    assert result.exit_code == 0, result.output
    recorded = info.read(tmp_path / "home")
    assert (recorded.seed, recorded.last_block, recorded.rpc_url) == (9, 25, url)
    assert recorded.token.address in result.output and "1..25" in result.output
    shown = runner.invoke(main.app, ["chain", "info"], env=env)
    assert shown.exit_code == 0 and recorded.token.address in shown.output


def test_cli_rejects_a_too_short_chain(make_anvil, tmp_path):
    result = CliRunner().invoke(
        main.app, ["chain", "seed", "--blocks", "3"], env={"TRACE_RPC_URL": make_anvil(), "TRACE_HOME": str(tmp_path)}
    )
    assert result.exit_code != 0
    assert "--blocks" in result.output
