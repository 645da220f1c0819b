"""The stored analytics against the chain itself: every number checked with eth_call at its block.

The analytics run through the Query Service (HTTP, user token granting the synced
versions); the chain answers through anvil's historical state. Nothing here
compares our numbers with our own numbers.
"""

from __future__ import annotations

import json
from fractions import Fraction
from itertools import combinations

import boto3
import psycopg
import pytest
from psycopg.rows import dict_row
from trace_core.analytics import errors, run, service

from tests.integration.analytics import chain_calls
from tests.integration.analytics.conftest import Synced, serving

TOP_N = 5


def test_total_supply_equals_totalsupply_at_every_block_of_the_synced_chain(synced: Synced, ports):
    info = synced.chain.info
    query, coverage = ports("erc20_transfers")
    # WHEN total_supply runs over everything synced, one row per block
    result = run.run("total_supply", {"token": info.token.address, "every_block": True}, query=query,
                     coverage=coverage)
    # THEN the window defaulted to the synced blocks, and there are at least 500 of them
    assert (result.from_block, result.to_block) == (0, synced.end)
    rows = result.table("total_supply").rows
    assert [b for b, _ in rows] == list(range(synced.end)) and len(rows) >= 500
    # AND each block's supply is what totalSupply() returns at that block
    chain = chain_calls.uint_calls(synced.chain.url, [(info.token.address, "totalSupply()", [], b) for b, _ in rows])
    assert [v for _, v in rows] == chain
    assert max(chain) >= 2**128  # the whale's mint: amounts past float and 128-bit range stay exact


def test_total_supply_over_a_sub_window_lists_exactly_the_blocks_where_supply_changed(synced: Synced, ports):
    info = synced.chain.info
    query, coverage = ports("erc20_transfers")
    lo, hi = 137, 452
    result = run.run("total_supply", {"token": info.token.address, "from_block": lo, "to_block": hi},
                     query=query, coverage=coverage)
    chain = chain_calls.uint_calls(synced.chain.url,
                                   [(info.token.address, "totalSupply()", [], b) for b in range(lo - 1, hi)])
    changed = [(b, chain[b - lo + 1]) for b in range(lo, hi) if chain[b - lo + 1] != chain[b - lo]]
    assert changed, "the seeded chain mints and burns in this window"
    assert result.table("total_supply").rows == tuple(changed)
    summary = result.summary_dict()
    assert (summary["opening_supply"], summary["closing_supply"]) == (chain[0], chain[-1])


def test_top_holders_are_the_true_top_n_with_every_sampled_balance_equal_to_balanceof(synced: Synced, ports):
    info = synced.chain.info
    query, coverage = ports("erc20_transfers")
    result = run.run("top_holders", {"token": info.token.address, "n": TOP_N, "samples": 40}, query=query,
                     coverage=coverage)
    tip = result.to_block - 1
    assert tip == info.last_block
    # GIVEN every holder's balance at the tip, from the chain (the pool holds every token)
    at_tip = chain_calls.uint_calls(synced.chain.url,
                                    [(info.token.address, "balanceOf(address)", [h], tip) for h in info.pool])
    truth = sorted(((-b, h) for h, b in zip(info.pool, at_tip) if b > 0))[:TOP_N]
    # THEN the leaderboard is the true top N, in order, with exact balances
    leaderboard = result.table("leaderboard").rows
    assert [(h, b) for _, h, b in leaderboard] == [(h, -nb) for nb, h in truth]
    assert len({b for _, _, b in leaderboard}) == TOP_N  # distinct balances: the order is not a tie-break
    # AND every sampled balance is balanceOf(holder) at that block
    series = result.table("balances").rows
    sampled = sorted({b for b, _, _ in series})
    assert 30 <= len(sampled) <= 40 and sampled[-1] == tip and len(series) == TOP_N * len(sampled)
    chain = chain_calls.uint_calls(synced.chain.url,
                                   [(info.token.address, "balanceOf(address)", [h], b) for b, h, _ in series])
    assert [v for _, _, v in series] == chain


def test_a_balance_at_or_above_2_128_comes_out_exact_in_python_and_json(synced: Synced, ports):
    info = synced.chain.info
    query, coverage = ports("erc20_transfers")
    result = run.run("top_holders", {"token": info.token.address, "n": 1, "samples": 3}, query=query,
                     coverage=coverage)
    ((_, holder, balance),) = result.table("leaderboard").rows
    (chain,) = chain_calls.uint_calls(synced.chain.url,
                                      [(info.token.address, "balanceOf(address)", [holder], result.to_block - 1)])
    assert holder == info.token.whale and balance == chain >= 2**128
    assert float(balance) == float(balance + 1)  # a float could not have told them apart
    as_json = json.loads(json.dumps(result.to_json()))
    assert as_json["tables"]["leaderboard"]["rows"][0][2] == str(chain)


def _gini(stakes: list[int]) -> Fraction:
    # The definition, pair by pair: sum over i<j of |xi-xj|, doubled, over 2 n sum.
    n, total = len(stakes), sum(stakes)
    return Fraction(2 * sum(abs(a - b) for a, b in combinations(stakes, 2)), 2 * n * total)


def _nakamoto(stakes: list[int], threshold: Fraction) -> int:
    running = 0
    for count, stake in enumerate(sorted(stakes, reverse=True), start=1):
        running += stake
        if Fraction(running, sum(stakes)) > threshold:
            return count
    raise AssertionError


def test_staking_concentration_equals_getvalidatorstake_and_independent_metrics(synced: Synced, ports):
    info = synced.chain.info
    staking = info.staking.address
    validators = [v.validator_id for v in info.staking.validators]
    query, coverage = ports("staking_events")
    result = run.run("staking_concentration", {"samples": 30, "top_k": 3}, query=query, coverage=coverage)
    concentration = result.table("concentration").dicts()
    blocks = [r["block_number"] for r in concentration]
    assert 20 <= len(blocks) <= 30 and blocks[-1] == info.last_block
    # GIVEN every validator's stake at every sampled block, as the staking contract reports it
    calls = [(staking, "getValidatorStake(uint64)", [v], b) for b in blocks for v in validators]
    values = chain_calls.uint_calls(synced.chain.url, calls)
    chain = {(b, v): s for (_, _, (v,), b), s in zip(calls, values)}
    # THEN the stake series equals it (a validator absent from a sample has no stake there)
    series = {(b, v): s for b, v, s, _ in result.table("stake_series").rows}
    for (block, validator), stake in chain.items():
        assert series.get((block, validator), 0) == stake, (block, validator)
    # AND each sample's metrics equal an independent computation from the chain's values
    for row in concentration:
        stakes = [chain[(row["block_number"], v)] for v in validators if chain[(row["block_number"], v)] > 0]
        assert row["validators"] == len(stakes)
        assert row["total_stake"] == sum(stakes)
        if not stakes:
            assert row["gini"] is None
            continue
        assert row["gini"] == _gini(stakes)
        assert row["top_k_share"] == Fraction(sum(sorted(stakes, reverse=True)[:3]), sum(stakes))
        assert row["nakamoto_third"] == _nakamoto(stakes, Fraction(1, 3))
        assert row["nakamoto_half"] == _nakamoto(stakes, Fraction(1, 2))
    assert concentration[-1]["validators"] == len(validators)


def test_delegators_per_validator_at_the_tip_equal_the_contract(synced: Synced, ports):
    info = synced.chain.info
    staking = info.staking.address
    query, coverage = ports("staking_events")
    result = run.run("staking_concentration", {"samples": 1}, query=query, coverage=coverage)
    tip = result.to_block - 1
    accounts = sorted(set(info.pool) | {v.auth_address for v in info.staking.validators})
    calls = [(staking, "getDelegatorStake(uint64,address)", [v.validator_id, a], tip)
             for v in info.staking.validators for a in accounts]
    stakes = chain_calls.uint_calls(synced.chain.url, calls)
    expected: dict[int, int] = {}
    for (_, _, (validator, _), _), stake in zip(calls, stakes):
        expected[validator] = expected.get(validator, 0) + (stake > 0)
    got = {r["validator_id"]: r["delegators"] for r in result.table("stake_by_validator").dicts()}
    assert got == expected
    shares = result.table("stake_by_validator").column("share")
    assert sum(shares) == 1


def test_a_window_outside_the_synced_blocks_is_an_error_naming_them(synced: Synced, ports):
    query, coverage = ports("erc20_transfers")
    with pytest.raises(errors.WindowError) as info:
        run.run("total_supply", {"token": synced.chain.info.token.address, "to_block": synced.end + 100},
                query=query, coverage=coverage)
    assert f"[0, {synced.end})" in info.value.message
    assert f"[0, {synced.end + 100})" in info.value.message


def test_a_result_over_the_inline_cap_comes_back_through_the_results_bucket(synced: Synced, ports, moto_url,
                                                                          analytics_buckets):
    # GIVEN a Query Service whose inline cap (1 KiB) is far below the supply series
    token = synced.chain.info.token.address
    inline_query, coverage = ports("erc20_transfers")
    inline = run.run("total_supply", {"token": token}, query=inline_query, coverage=coverage)
    small = synced.settings.model_copy(update={"query_inline_max_bytes": 1024})
    with serving(small) as url, psycopg.connect(small.database_url or "", autocommit=True,
                                                 row_factory=dict_row) as conn:
        query, coverage = service.service_ports(url, small, conn, "erc20_transfers")
        try:
            # WHEN the analytic runs there THEN it is exported, fetched, and the same to the last digit
            exported = run.run("total_supply", {"token": token}, query=query, coverage=coverage)
        finally:
            query.close()
    assert exported.table("total_supply").rows == inline.table("total_supply").rows
    assert len(inline.table("total_supply").rows) > 100
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=analytics_buckets["results"]).get("Contents", [])
    assert any(item["Key"].endswith(".parquet") for item in listed)
