"""``seed()``: deploy the contracts on a fresh anvil and mine the planned activity, block by block.

The node must be anvil (it relies on ``anvil_setCode``, ``evm_setAutomine``,
``anvil_autoImpersonateAccount`` and ``evm_mine`` with a timestamp) at block 0
with its default dev accounts. Each block's transactions go in one JSON-RPC
batch, then ``evm_mine`` seals the block at its planned timestamp. anvil serves
a batch concurrently, so arrival order in its pool is not fixed: each
transaction gets a distinct priority fee, decreasing with its position, which
fixes the order in the block (and a sender's later nonce always pays less).
Every block is checked afterwards: same transactions in the same order, every
receipt successful; otherwise SeedError names the block and transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trace_core.chain import abi, activity, artifacts, cache, errors, info, rpc

DEV_BALANCE = 10_000 * activity.MON
DEV_ACCOUNTS = 10
Progress = Callable[[int, int], None]


def params_for(seed: int, blocks: int, genesis_timestamp: int) -> activity.Params:
    """Validated generator parameters; SeedError names the bad argument and what was expected."""
    try:
        return activity.Params(seed=seed, blocks=blocks, genesis_timestamp=genesis_timestamp)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise errors.SeedError(
            f"{field}: {first['msg'].lower()} (got {first.get('input')!r})", field=field
        ) from exc


def seed(
    rpc_url: str,
    *,
    seed: int,
    blocks: int,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> info.ChainInfo:
    """Seed the fresh anvil at ``rpc_url`` with ``blocks`` blocks of activity drawn from ``seed``.

    Deterministic: the same seed and size on a node with the same genesis give
    the same blocks (hashes included), transactions, logs and balances. If the
    node already holds exactly this chain (recorded under ``cache_dir``), its
    ChainInfo is returned without mining. ``progress(done, total)`` is called
    after each block.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise errors.SeedError(f"seed: expected an integer >= 0, got {seed!r}", field="seed")
    with rpc.RpcClient(rpc_url) as client:
        chain_id = rpc.to_int(client.call("eth_chainId"))
        genesis = client.call("eth_getBlockByNumber", ["0x0", False])
        params = params_for(seed, blocks, rpc.to_int(genesis["timestamp"]))
        cache_key = cache.key(params, chain_id)
        head = rpc.to_int(client.call("eth_blockNumber"))
        if head != 0:
            return _already_seeded(client, rpc_url, head, cache_dir, cache_key)
        accounts = _accounts(client, params)
        plan = activity.plan(params, accounts, artifacts.contract("TraceToken").bytecode)
        mined = _mine(client, chain_id, plan, progress)
        chain = _describe(client, rpc_url, chain_id, plan, genesis["hash"], mined, cache_key)
    if cache_dir is not None:
        cache.store(cache_dir, cache_key, chain.model_copy(update={"rpc_url": ""}))
    return chain


def _already_seeded(
    client: rpc.RpcClient, rpc_url: str, head: int, cache_dir: Path | None, cache_key: str
) -> info.ChainInfo:
    known = cache.read_info(cache_dir, cache_key) if cache_dir is not None else None
    if known is not None and head >= known.last_block:
        block = client.call("eth_getBlockByNumber", [rpc.quantity(known.last_block), False])
        if block is not None and block["hash"] == known.last_block_hash:
            return known.model_copy(update={"rpc_url": rpc_url})
    raise errors.SeedError(
        f"the node at {rpc_url} already has {head} blocks: seeding needs a fresh chain at block 0",
        fix="restart the node (`trace-lite down && trace-lite up`) or point at a fresh anvil",
    )


def _accounts(client: rpc.RpcClient, params: activity.Params) -> activity.Accounts:
    dev = [address.lower() for address in client.call("eth_accounts")]
    if len(dev) < DEV_ACCOUNTS:
        raise errors.SeedError(
            f"the node has {len(dev)} unlocked accounts, expected anvil's {DEV_ACCOUNTS} dev accounts",
            fix="start anvil with its defaults (no --accounts below 10)",
        )
    dev = dev[:DEV_ACCOUNTS]
    balances = client.batch([("eth_getBalance", [address, "latest"]) for address in dev])
    for address, balance in zip(dev, balances):
        if rpc.to_int(balance) < DEV_BALANCE:
            raise errors.SeedError(
                f"dev account {address} holds {rpc.to_int(balance)} wei, expected at least {DEV_BALANCE}",
                fix="start anvil with its default balance (10000 ETH per dev account)",
            )
    return activity.Accounts(
        deployer=dev[0],
        rewarder=dev[1],
        funders=tuple(dev[2:]),
        pool=activity.pool_addresses(params.pool_size),
        validators=activity.validator_addresses(params.validators),
    )


def _request(tx: activity.Tx, position: int, count: int, chain_id: int) -> dict[str, Any]:
    request: dict[str, Any] = {
        "from": tx.sender,
        "nonce": rpc.quantity(tx.nonce),
        "gas": rpc.quantity(tx.gas),
        "value": rpc.quantity(tx.value),
        "data": tx.data,
        "type": "0x2",
        "chainId": rpc.quantity(chain_id),
        "maxFeePerGas": rpc.quantity(activity.MAX_FEE_PER_GAS),
        # Distinct and decreasing with position: fixes the order anvil puts the block in.
        "maxPriorityFeePerGas": rpc.quantity(activity.TIP_BASE + count - position),
    }
    if tx.to is not None:
        request["to"] = tx.to
    return request


def _mine(
    client: rpc.RpcClient, chain_id: int, plan: activity.Plan, progress: Progress | None
) -> int:
    """Send and mine every planned block; returns the number of transactions mined."""
    staking = artifacts.contract("MonadStaking")
    automine = bool(client.call("anvil_getAutomine"))
    client.call("evm_setAutomine", [False])
    client.call("anvil_autoImpersonateAccount", [True])
    mined = 0
    try:
        # Monad's staking precompile has no deployment transaction: its code is simply there.
        client.call("anvil_setCode", [abi.STAKING_ADDRESS, staking.deployed_bytecode])
        previous: tuple[activity.BlockPlan, list[str]] | None = None
        for block in plan.blocks():
            calls: list[tuple[str, rpc.Params]] = [
                ("eth_sendTransaction", [_request(tx, i, len(block.txs), chain_id)])
                for i, tx in enumerate(block.txs)
            ]
            if previous is not None:
                calls += _check_calls(previous[0].number)
            results = client.batch(calls)
            hashes = list(results[: len(block.txs)])
            if previous is not None:
                _verify(previous[0], previous[1], *results[len(block.txs) :])
            client.call("evm_mine", [block.timestamp])
            mined += len(block.txs)
            previous = (block, hashes)
            if progress is not None:
                progress(block.number, plan.params.blocks)
        if previous is not None:
            _verify(previous[0], previous[1], *client.batch(_check_calls(previous[0].number)))
    finally:
        # Best effort: if the node died, the error that got us here is the one to report.
        with contextlib.suppress(errors.RpcError):
            client.call("anvil_autoImpersonateAccount", [False])
            client.call("evm_setAutomine", [automine])
    return mined


def _check_calls(number: int) -> list[tuple[str, rpc.Params]]:
    return [
        ("eth_getBlockByNumber", [rpc.quantity(number), False]),
        ("eth_getBlockReceipts", [rpc.quantity(number)]),
    ]


_PARTIAL = "the node now holds a partial chain: restart it and seed again"


def _verify(planned: activity.BlockPlan, hashes: list[str], block: Any, receipts: Any) -> None:
    if block is None:
        raise errors.SeedError(f"block {planned.number} was not mined", fix=_PARTIAL)
    if block["transactions"] != hashes:
        raise errors.SeedError(
            f"block {planned.number} holds {len(block['transactions'])} transactions in a different set or "
            f"order than the {len(hashes)} sent: the chain would not be deterministic",
            fix="start anvil with its default transaction ordering (--order fees); " + _PARTIAL,
        )
    if rpc.to_int(block["timestamp"]) != planned.timestamp:
        raise errors.SeedError(
            f"block {planned.number} has timestamp {block['timestamp']}, expected {planned.timestamp}", fix=_PARTIAL
        )
    for tx, receipt in zip(planned.txs, receipts or []):
        if receipt is None or receipt.get("status") != "0x1":
            raise errors.SeedError(
                f"block {planned.number}: {tx.kind} from {tx.sender} (nonce {tx.nonce}) failed "
                f"(tx {receipt and receipt.get('transactionHash')}, gas used {receipt and receipt.get('gasUsed')})",
                fix=_PARTIAL,
            )


def _describe(
    client: rpc.RpcClient,
    rpc_url: str,
    chain_id: int,
    plan: activity.Plan,
    genesis_hash: str,
    mined: int,
    cache_key: str,
) -> info.ChainInfo:
    p, a = plan.params, plan.accounts
    last = client.call("eth_getBlockByNumber", [rpc.quantity(p.blocks), False])
    code = client.call("eth_getCode", [plan.token_address, "latest"])
    if code in (None, "0x"):
        raise errors.SeedError(f"no token code at {plan.token_address} after seeding")
    return info.ChainInfo(
        rpc_url=rpc_url,
        chain_id=chain_id,
        seed=p.seed,
        blocks=p.blocks,
        first_block=1,
        last_block=p.blocks,
        genesis_hash=genesis_hash,
        last_block_hash=last["hash"],
        genesis_timestamp=p.genesis_timestamp,
        block_time=p.block_time,
        transactions=mined,
        generator_version=activity.GENERATOR_VERSION,
        cache_key=cache_key,
        historical_state=has_historical_state(client, a.deployer, 1),
        token=info.TokenInfo(
            address=plan.token_address,
            deploy_block=1,
            owner=a.deployer,
            name="Trace Test Token",
            symbol="TTT",
            decimals=18,
            whale=a.whale,
        ),
        staking=info.StakingInfo(
            address=abi.STAKING_ADDRESS,
            system_address=a.system,
            epoch_blocks=p.epoch_blocks,
            validators=[
                info.Validator(
                    validator_id=i + 1,
                    auth_address=auth,
                    commission=activity.commission_of(i + 1),
                    weight=plan.validator_weights[i],
                )
                for i, auth in enumerate(a.validators)
            ],
        ),
        deployer=a.deployer,
        rewarder=a.rewarder,
        pool=list(a.pool),
    )


def has_historical_state(client: rpc.RpcClient, address: str, block: int) -> bool:
    """Whether the node still answers state queries at ``block`` (anvil drops old states past its limits)."""
    try:
        client.call("eth_getBalance", [address, rpc.quantity(block)])
        return True
    except errors.RpcError:
        return False
