"""The activity planner: deterministic, never plans a reverting transaction, and has the shape analytics need."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from trace_core.chain import abi, activity, artifacts, errors, seeder

GENESIS = 1_735_689_600
DEV = tuple(f"0x{i:040x}" for i in range(1, 11))


def _accounts() -> activity.Accounts:
    return activity.Accounts(
        deployer=DEV[0],
        rewarder=DEV[1],
        funders=DEV[2:],
        pool=activity.pool_addresses(64),
        validators=activity.validator_addresses(7),
    )


def _plan(seed: int, blocks: int = 300) -> tuple[activity.Plan, list[activity.BlockPlan]]:
    params = activity.Params(seed=seed, blocks=blocks, genesis_timestamp=GENESIS)
    plan = activity.plan(params, _accounts(), artifacts.contract("TraceToken").bytecode)
    return plan, list(plan.blocks())


def test_same_seed_gives_the_same_blocks():
    # GIVEN two plans with the same seed WHEN planned THEN every block and transaction is identical
    assert _plan(3)[1] == _plan(3)[1]


def test_different_seed_gives_different_blocks():
    first, second = _plan(3)[1], _plan(4)[1]
    assert [b.txs for b in first] != [b.txs for b in second]
    assert [len(b.txs) for b in first[3:]] != [len(b.txs) for b in second[3:]]


def test_blocks_are_numbered_from_one_with_fixed_timestamps():
    _, blocks = _plan(1, blocks=120)
    assert [b.number for b in blocks] == list(range(1, 121))
    assert [b.timestamp for b in blocks] == [GENESIS + n for n in range(1, 121)]


def test_nonces_are_consecutive_per_sender():
    _, blocks = _plan(1)
    seen: dict[str, list[int]] = defaultdict(list)
    for block in blocks:
        for tx in block.txs:
            seen[tx.sender].append(tx.nonce)
    assert all(nonces == list(range(len(nonces))) for nonces in seen.values())


def test_setup_blocks_deploy_fund_create_validators_and_mint():
    plan, blocks = _plan(1)
    block1, block2, block3 = (Counter(tx.kind for tx in b.txs) for b in blocks[:3])
    assert block1["deploy"] == 1 and block1["native"] >= 64 + 7 + 1
    assert blocks[0].txs[0].sender == DEV[0] and blocks[0].txs[0].nonce == 0
    assert plan.token_address == abi.create_address(DEV[0], 0)
    assert block2["add_validator"] == 7 and block2["mint"] == 64
    assert block3["delegate"] == 64


def test_ledger_stays_consistent_and_the_whale_stays_above_2_pow_128():
    # GIVEN a plan WHEN all blocks are planned THEN the model state is consistent at the end
    plan, _ = _plan(5, blocks=600)
    ledger = plan.ledger
    assert ledger.token[plan.accounts.whale] >= 2**128
    assert all(balance >= 0 for balance in ledger.token.values())
    assert ledger.total_supply == sum(ledger.token.values())
    assert all(balance >= 0 for balance in ledger.native.values())
    for validator_id, total in ledger.validator_stake.items():
        assert total == sum(s for (v, _), s in ledger.stakes.items() if v == validator_id)


def test_holders_have_distinct_balances_and_validators_skewed_stake():
    plan, _ = _plan(5)
    top = sorted(plan.ledger.token.values(), reverse=True)[:10]
    assert len(set(top)) == 10
    stakes = sorted(plan.ledger.validator_stake.values())
    assert stakes[-1] > 2 * stakes[0]


def test_every_kind_of_activity_occurs():
    _, blocks = _plan(2, blocks=400)
    kinds = Counter(tx.kind for block in blocks for tx in block.txs)
    for kind in (
        "native",
        "transfer",
        "mint",
        "burn",
        "delegate",
        "undelegate",
        "withdraw",
        "claim",
        "reward",
        "epoch",
    ):
        assert kinds[kind] > 0, kind


def test_epoch_changes_every_epoch_blocks_as_the_blocks_first_transaction():
    _, blocks = _plan(2, blocks=260)
    epoch_blocks = [b.number for b in blocks if any(tx.kind == "epoch" for tx in b.txs)]
    assert epoch_blocks == [50, 100, 150, 200, 250]
    for number in epoch_blocks:
        first = blocks[number - 1].txs[0]
        assert first.kind == "epoch" and first.sender == abi.SYSTEM_ADDRESS
        assert first.data == abi.encode_call("syscallOnEpochChange(uint64)", number // 50)


def test_withdrawals_only_after_their_epoch_plus_delay():
    # GIVEN the plan WHEN a withdraw is planned THEN its undelegation became effective at least one epoch earlier
    _, blocks = _plan(2, blocks=400)
    epoch = 0
    undelegated: dict[tuple[str, str], int] = {}
    for block in blocks:
        for tx in block.txs:
            if tx.kind == "epoch":
                epoch += 1
            elif tx.kind == "undelegate":
                validator_id, _, wid = abi.decode(["uint64", "uint256", "uint8"], "0x" + tx.data[10:])
                undelegated[(tx.sender, f"{validator_id}/{wid}")] = epoch + 1
            elif tx.kind == "withdraw":
                validator_id, wid = abi.decode(["uint64", "uint8"], "0x" + tx.data[10:])
                assert epoch >= undelegated.pop((tx.sender, f"{validator_id}/{wid}")) + 1


@pytest.mark.parametrize(
    ("seed", "blocks", "field", "expected"),
    [
        (1, 5, "blocks", "greater than or equal to 10"),
        (-1, 100, "seed", "greater than or equal to 0"),
        (1, "many", "blocks", "integer"),
    ],
)
def test_bad_arguments_fail_naming_the_field(seed, blocks, field, expected):
    with pytest.raises(errors.SeedError) as info:
        seeder.params_for(seed, blocks, GENESIS)
    assert info.value.details["field"] == field
    assert str(info.value).startswith(f"{field}: ")
    assert expected in str(info.value)


def test_create_address_matches_the_known_vector():
    # Widely published example of CREATE addresses for one sender.
    sender = "0x6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0"
    assert abi.create_address(sender, 0) == "0xcd234a471b72ba2f1ccf0a70fcaba648a5eecd8d"
    assert abi.create_address(sender, 1) == "0x343c43a37d37dff08ae8c4a11544c718abb4fcf8"


def test_encode_call_checks_the_argument_count():
    assert abi.encode_call("delegate(uint64)", 3) == "0x84994fec" + "00" * 31 + "03"
    with pytest.raises(ValueError, match="takes 1 arguments, got 2"):
        abi.encode_call("delegate(uint64)", 3, 4)
