"""The SQL templates and shaping, against a plain-Python replay of the same events (random histories).

The relations are Arrow tables in a local DuckDB (analytics.memory); the platform
path through the Query Service is tested against the chain itself in
tests/integration/analytics.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trace_core.analytics import memory, metrics, run, windows

ZERO = "0x" + "00" * 20
TOKEN = "0x" + "70" * 20
OTHER_TOKEN = "0x" + "71" * 20
HOLDERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 9)]


def _history(seed: int, blocks: int) -> tuple[list[tuple[int, str, str, int]], list[dict[str, int]]]:
    """Random mints, burns and transfers; returns the transfers and every holder's balance after each block."""
    rng = random.Random(seed)
    balances = dict.fromkeys(HOLDERS, 0)
    transfers = []
    after = []
    for block in range(blocks):
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            kind = rng.choice(["mint", "mint", "transfer", "transfer", "transfer", "burn"])
            value = rng.choice([1, rng.randrange(1, 10**18), rng.randrange(2**128, 2**200)])
            if kind == "mint":
                to = rng.choice(HOLDERS)
                balances[to] += value
                transfers.append((block, ZERO, to, value))
                continue
            source = rng.choice(HOLDERS)
            value = min(value, balances[source])
            if kind == "burn":
                balances[source] -= value
                transfers.append((block, source, ZERO, value))
            else:
                to = rng.choice(HOLDERS)
                balances[source] -= value
                balances[to] += value
                transfers.append((block, source, to, value))
        after.append(dict(balances))
    return transfers, after


def _erc20_table(transfers: list[tuple[int, str, str, int]]) -> pa.Table:
    # Noise from another token must not count.
    rows = [(b, TOKEN, f, t, v) for b, f, t, v in transfers] + [(0, OTHER_TOKEN, ZERO, HOLDERS[0], 10**30)]
    return pa.table({
        "block_number": pa.array([r[0] for r in rows], pa.uint32()),
        "transaction_index": pa.array([0] * len(rows), pa.uint32()),
        "log_index": pa.array(list(range(len(rows))), pa.uint32()),
        "erc20": [r[1] for r in rows],
        "from_address": [r[2] for r in rows],
        "to_address": [r[3] for r in rows],
        "value_string": [str(r[4]) for r in rows],
        "value_f64": [float(r[4]) for r in rows],
    })


windows_st = st.tuples(st.integers(0, 30), st.integers(1, 40))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), window=windows_st, every_block=st.booleans())
def test_total_supply_equals_the_replayed_supply_at_every_block(seed, window, every_block):
    # GIVEN a random history of 80 blocks, synced in two ranges
    transfers, after = _history(seed, 80)
    query = memory.ArrowQuery({"erc20_transfers": _erc20_table(transfers)})
    coverage = memory.FixedCoverage({"erc20_transfers": [(40, 80), (0, 40)]})
    lo, length = window
    hi = min(lo + length, 80)
    # WHEN total_supply runs over [lo, hi)
    result = run.run("total_supply", {"token": TOKEN, "from_block": lo, "to_block": hi, "every_block": every_block},
                     query=query, coverage=coverage)
    # THEN each row is the replayed supply after that block, and rows are exactly the blocks it changed in
    supply = [sum(b.values()) for b in after]
    rows = result.table("total_supply").rows
    opening = supply[lo - 1] if lo > 0 else 0
    if every_block:
        assert rows == tuple((b, supply[b]) for b in range(lo, hi))
    else:
        changed = [b for b in range(lo, hi) if supply[b] != (supply[b - 1] if b > 0 else 0)]
        assert rows == tuple((b, supply[b]) for b in changed)
    summary = result.summary_dict()
    assert (summary["opening_supply"], summary["closing_supply"]) == (opening, supply[hi - 1])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), window=windows_st, n=st.integers(1, 10), samples=st.integers(1, 12))
def test_top_holders_are_the_replayed_top_n_with_their_balances_at_each_sample(seed, window, n, samples):
    transfers, after = _history(seed, 80)
    query = memory.ArrowQuery({"erc20_transfers": _erc20_table(transfers)})
    coverage = memory.FixedCoverage({"erc20_transfers": [(0, 80)]})
    lo, length = window
    hi = min(lo + length, 80)
    result = run.run("top_holders", {"token": TOKEN, "from_block": lo, "to_block": hi, "n": n, "samples": samples},
                     query=query, coverage=coverage)
    # THEN the leaderboard is the top n positive balances after hi-1, largest first, ties by address
    tip = after[hi - 1]
    expected = sorted(((-v, h) for h, v in tip.items() if v > 0))[:n]
    leaderboard = result.table("leaderboard").rows
    assert [(h, b) for _, h, b in leaderboard] == [(h, -v) for v, h in expected]
    assert [r for r, _, _ in leaderboard] == list(range(1, len(expected) + 1))
    # AND every sampled balance is the replayed one, the last sample being the window's last block
    series = result.table("balances").rows
    sampled = windows.sampling(windows.Window(lo, hi, 0), samples).blocks
    assert sampled[-1] == hi - 1 and len(sampled) <= samples
    assert series == tuple((block, h, after[block][h]) for _, h, _ in leaderboard for block in sampled)


def _staking_history(seed: int, blocks: int):
    rng = random.Random(seed)
    stakes: dict[tuple[int, str], int] = {}
    events = []
    after = []
    for block in range(blocks):
        for _ in range(rng.choice([0, 1, 2])):
            validator = rng.randrange(1, 5)
            delegator = rng.choice(HOLDERS[:4])
            current = stakes.get((validator, delegator), 0)
            if current and rng.random() < 0.4:
                amount = rng.choice([current, rng.randrange(1, current + 1)])
                stakes[(validator, delegator)] = current - amount
                events.append((block, "Undelegate", validator, delegator, amount))
            else:
                amount = rng.choice([10**9, rng.randrange(10**18, 10**21), 2**128 + rng.randrange(10**6)])
                stakes[(validator, delegator)] = current + amount
                events.append((block, "Delegate", validator, delegator, amount))
        if rng.random() < 0.2:
            events.append((block, "ClaimRewards", 1, HOLDERS[0], 5))  # changes no stake
        after.append(dict(stakes))
    return events, after


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), window=windows_st, samples=st.integers(1, 10), top_k=st.integers(1, 4))
def test_staking_concentration_equals_the_replayed_stakes_and_their_metrics(seed, window, samples, top_k):
    events, after = _staking_history(seed, 80)
    table = pa.table({
        "block_number": pa.array([e[0] for e in events], pa.uint32()),
        "log_index": pa.array(list(range(len(events))), pa.uint32()),
        "event": [e[1] for e in events],
        "validator_id": pa.array([e[2] for e in events], pa.uint64()),
        "delegator": [e[3] for e in events],
        "amount": [str(e[4]) for e in events],
    })
    lo, length = window
    hi = min(lo + length, 80)
    result = run.run("staking_concentration", {"from_block": lo, "to_block": hi, "samples": samples, "top_k": top_k},
                     query=memory.ArrowQuery({"staking_events": table}),
                     coverage=memory.FixedCoverage({"staking_events": [(0, 80)]}))
    seen = set()
    first_seen = {}
    for block, kind, validator, _, _ in events:
        if kind in ("Delegate", "Undelegate") and validator not in seen:
            seen.add(validator)
            first_seen[validator] = block
    for row in result.table("concentration").dicts():
        block = row["block_number"]
        per_validator: dict[int, int] = {}
        for (validator, _), stake in after[block].items():
            per_validator[validator] = per_validator.get(validator, 0) + stake
        positive = [s for s in per_validator.values() if s > 0]
        assert row["validators"] == len(positive)
        assert row["total_stake"] == sum(positive)
        assert row["gini"] == metrics.gini(positive)
        assert row["top_k_share"] == (
            Fraction(sum(sorted(positive, reverse=True)[:top_k]), sum(positive)) if positive else None
        )
        assert row["nakamoto_third"] == metrics.nakamoto(positive)
        assert row["nakamoto_half"] == metrics.nakamoto(positive, metrics.ONE_HALF)
    tip = after[hi - 1]
    expected = {}
    for (validator, _), stake in tip.items():
        count = expected.get(validator, (0, 0))
        expected[validator] = (count[0] + stake, count[1] + (stake > 0))
    got = {r["validator_id"]: (r["stake"], r["delegators"]) for r in result.table("stake_by_validator").dicts()}
    assert got == expected
