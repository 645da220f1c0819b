"""The deterministic activity of a seeded chain: which transactions go in which block. Pure (no I/O).

:func:`plan` turns ``(params, accounts)`` into :class:`BlockPlan` s, one per
block, using ``random.Random(seed)`` and integer arithmetic only (no floats),
so the same inputs give the same transactions on every machine. It keeps a
model of the chain's state (:class:`Ledger`: token balances, stakes, withdrawal
requests, a lower bound of native balances, nonces) so it never plans a
transaction that would revert.

Block layout (block numbers are absolute; the chain starts at genesis 0):

1. deploy the token; fund the pool, the validators' auth addresses and the system address;
2. ``addValidator`` for each validator (with its self-stake); mint every holder's first balance;
3. each pool account delegates once, to a validator chosen by skewed weights;
4. onwards, a handful of random transactions per block: native transfers, token
   transfers, mints, burns, delegate / undelegate / withdraw / claimRewards.

Every ``epoch_blocks`` blocks the system address calls ``syscallOnEpochChange``
first, then the rewarder pays ``externalReward`` to each validator with stake.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from trace_core.chain import abi

GENERATOR_VERSION = 1
"""Bump whenever the planned transactions change: it is part of the cache key."""

MIN_BLOCKS = 10
MON = 10**18
WHALE_BALANCE = 3 * 2**127 + 123_456_789  # > 2**128, odd on purpose: exact uint256 arithmetic matters downstream
MAX_FEE_PER_GAS = 10 * 10**9
TIP_BASE = 10**9  # 1 gwei; each tx in a block gets a distinct tip so the block's order is fixed (see seeder)

GAS = {
    "deploy": 1_500_000,
    "native": 21_000,
    "transfer": 80_000,
    "mint": 90_000,
    "burn": 60_000,
    "add_validator": 300_000,
    "delegate": 200_000,
    "undelegate": 200_000,
    "withdraw": 100_000,
    "claim": 120_000,
    "reward": 80_000,
    "epoch": 60_000,
}

# Relative weights of the random transaction kinds (integers: no float arithmetic anywhere).
KIND_WEIGHTS = (
    ("native", 24),
    ("transfer", 36),
    ("mint", 4),
    ("burn", 4),
    ("delegate", 12),
    ("undelegate", 6),
    ("withdraw", 6),
    ("claim", 8),
)
# Validator popularity before the seed shuffles it: top-heavy, so concentration metrics are interesting.
VALIDATOR_WEIGHTS = (30, 22, 16, 12, 9, 6, 5, 4, 3, 2, 1, 1)


class Params(BaseModel):
    """What a seeded chain is a function of (with the accounts and the contracts' bytecode)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(ge=0)
    blocks: int = Field(ge=MIN_BLOCKS, le=1_000_000, description="Blocks after genesis: the chain ends at this number.")
    genesis_timestamp: int = Field(ge=0)
    block_time: int = Field(default=1, ge=1)
    pool_size: int = Field(default=64, ge=8, le=1000)
    validators: int = Field(default=7, ge=2, le=len(VALIDATOR_WEIGHTS))
    epoch_blocks: int = Field(default=50, ge=5)
    min_txs: int = Field(default=4, ge=0)
    max_txs: int = Field(default=16, ge=1, le=200)


@dataclasses.dataclass(frozen=True)
class Accounts:
    """Who does what. ``deployer`` owns the token; ``funders`` hold the native supply (anvil's dev accounts)."""

    deployer: str
    rewarder: str
    funders: tuple[str, ...]
    pool: tuple[str, ...]
    validators: tuple[str, ...]
    system: str = abi.SYSTEM_ADDRESS

    @property
    def whale(self) -> str:
        """The holder whose token balance stays above 2**128."""
        return self.pool[0]


@dataclasses.dataclass(frozen=True)
class Tx:
    kind: str
    sender: str
    nonce: int
    to: str | None
    value: int
    data: str
    gas: int


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    number: int
    timestamp: int
    txs: tuple[Tx, ...]


def commission_of(validator_id: int) -> int:
    """The commission (scaled by 1e18) validator ``validator_id`` registers with: 0% to 9%."""
    return (((validator_id - 1) * 3) % 10) * 10**16


def pool_addresses(size: int) -> tuple[str, ...]:
    """The fixed pool of EOAs that make the activity (the same for every seed; anvil impersonates them)."""
    return tuple(abi.address_from_label(f"trace-lite/pool/{i}") for i in range(size))


def validator_addresses(count: int) -> tuple[str, ...]:
    return tuple(abi.address_from_label(f"trace-lite/validator/{i}") for i in range(count))


@dataclasses.dataclass
class Ledger:
    """The planner's model of chain state. ``native`` is a lower bound (fees are charged at the maximum)."""

    token: dict[str, int] = dataclasses.field(default_factory=dict)
    total_supply: int = 0
    native: dict[str, int] = dataclasses.field(default_factory=dict)
    nonces: dict[str, int] = dataclasses.field(default_factory=dict)
    stakes: dict[tuple[int, str], int] = dataclasses.field(default_factory=dict)
    validator_stake: dict[int, int] = dataclasses.field(default_factory=dict)
    # (validator, delegator, withdraw id) -> (amount, withdraw epoch)
    withdrawals: dict[tuple[int, str, int], tuple[int, int]] = dataclasses.field(default_factory=dict)
    epoch: int = 0
    transactions: int = 0

    def next_nonce(self, sender: str) -> int:
        nonce = self.nonces.get(sender, 0)
        self.nonces[sender] = nonce + 1
        return nonce


class _Planner:
    def __init__(self, params: Params, accounts: Accounts, token_bytecode: str) -> None:
        if len(accounts.validators) != params.validators:
            raise ValueError(f"accounts.validators: expected {params.validators} addresses")
        if len(accounts.pool) != params.pool_size:
            raise ValueError(f"accounts.pool: expected {params.pool_size} addresses")
        self.p = params
        self.a = accounts
        self.rng = random.Random(params.seed)
        self.ledger = Ledger()
        self.token_bytecode = token_bytecode
        self.token = abi.create_address(accounts.deployer, 0)
        weights = list(VALIDATOR_WEIGHTS[: params.validators])
        self.rng.shuffle(weights)
        self.validator_weights = weights  # index i is validator id i + 1

    # ------------------------------------------------------------ helpers
    def tx(self, kind: str, sender: str, to: str | None, data: str = "0x", value: int = 0) -> Tx:
        gas = GAS[kind]
        native = self.ledger.native
        if sender in native:
            cost = value + gas * MAX_FEE_PER_GAS
            if native[sender] < cost:
                raise AssertionError(f"planner bug: {sender} cannot pay {cost} for {kind}")
            native[sender] -= cost
        if to is not None and to in native and kind == "native":
            native[to] += value
        self.ledger.transactions += 1
        return Tx(kind, sender, self.ledger.next_nonce(sender), to, value, data, gas)

    def skewed(self, unit: int, top_tier: int) -> int:
        """``unit`` times a heavy-tailed integer: tier k (probability ~ 3**-k) scales by 4**k."""
        tier = 0
        while tier < top_tier and self.rng.randrange(3) == 0:
            tier += 1
        scale: int = 4**tier  # int ** int is typed Any (a negative exponent would make a float)
        return unit * (1 + self.rng.randrange(9)) * scale + self.rng.randrange(unit)

    def pick_validator(self) -> int:
        roll = self.rng.randrange(sum(self.validator_weights))
        for index, weight in enumerate(self.validator_weights):
            if roll < weight:
                return index + 1
            roll -= weight
        raise AssertionError("unreachable")

    def can_pay(self, sender: str, kind: str, value: int = 0) -> bool:
        return self.ledger.native.get(sender, 0) >= value + GAS[kind] * MAX_FEE_PER_GAS

    # ------------------------------------------------------------ setup blocks
    def block_setup(self) -> list[Tx]:
        """Block 1: deploy the token and hand out the native supply (from the funders, greedily)."""
        led = self.ledger
        for funder in self.a.funders:
            led.native[funder] = 10_000 * MON
        led.native[self.a.deployer] = 10_000 * MON
        led.native[self.a.rewarder] = 10_000 * MON
        txs = [self.tx("deploy", self.a.deployer, None, self.token_bytecode)]
        wants: list[tuple[str, int]] = [(self.a.system, 10 * MON)]
        wants += [(v, 2_000 * MON + self.skewed(MON, 3) * 20) for v in self.a.validators]
        wants += [(holder, 20 * MON + self.skewed(MON, 5) * 3) for holder in self.a.pool]
        funders = list(self.a.funders)
        for address, wanted in wants:
            led.native.setdefault(address, 0)
            amount = wanted
            while amount > 0:
                funder = funders[0]
                spare = led.native[funder] - 50 * MON  # keep gas money
                if spare <= 0:
                    funders.pop(0)
                    if not funders:
                        raise AssertionError("planner bug: funders ran out of native balance")
                    continue
                part = min(amount, spare)
                txs.append(self.tx("native", funder, address, value=part))
                amount -= part
        return txs

    def block_validators_and_mints(self) -> list[Tx]:
        """Block 2: create the validators (with skewed self-stake) and mint every holder's first balance."""
        led = self.ledger
        txs = []
        for index, auth in enumerate(self.a.validators):
            validator_id = index + 1
            commission = commission_of(validator_id)
            self_stake = 100 * MON + self.skewed(MON, 3) * 10
            payload = abi.encode_call("f(address,uint256)", auth, commission)[10:]
            data = abi.encode_call("addValidator(bytes,bytes,bytes)", bytes.fromhex(payload), b"", b"")
            txs.append(self.tx("add_validator", auth, abi.STAKING_ADDRESS, data, value=self_stake))
            led.stakes[(validator_id, auth)] = self_stake
            led.validator_stake[validator_id] = self_stake
        for index, holder in enumerate(self.a.pool):
            # Distinct by construction: a skewed amount plus a per-holder offset.
            amount = WHALE_BALANCE if holder == self.a.whale else self.skewed(1_000 * MON, 6) + index * 10**15
            txs.append(self.mint(holder, amount))
        return txs

    def block_first_delegations(self) -> list[Tx]:
        """Block 3: every pool account delegates once, so each validator has a crowd of delegators."""
        txs = []
        for holder in self.a.pool:
            amount = min(self.skewed(MON, 5), self.ledger.native[holder] // 2)
            txs.append(self.delegate(holder, self.pick_validator(), amount))
        return txs

    # ------------------------------------------------------------ actions
    def mint(self, to: str, amount: int) -> Tx:
        led = self.ledger
        led.token[to] = led.token.get(to, 0) + amount
        led.total_supply += amount
        return self.tx("mint", self.a.deployer, self.token, abi.encode_call("mint(address,uint256)", to, amount))

    def delegate(self, who: str, validator_id: int, amount: int) -> Tx:
        led = self.ledger
        led.stakes[(validator_id, who)] = led.stakes.get((validator_id, who), 0) + amount
        led.validator_stake[validator_id] += amount
        return self.tx("delegate", who, abi.STAKING_ADDRESS, abi.encode_call("delegate(uint64)", validator_id), amount)

    def random_tx(self) -> Tx | None:
        roll = self.rng.randrange(sum(weight for _, weight in KIND_WEIGHTS))
        for kind, weight in KIND_WEIGHTS:
            if roll < weight:
                return getattr(self, f"_random_{kind}")()  # type: ignore[no-any-return]
            roll -= weight
        raise AssertionError("unreachable")

    def _random_native(self) -> Tx | None:
        sender, to = self.rng.sample(self.a.pool, 2)
        value = self.rng.randrange(10**15, MON)
        if not self.can_pay(sender, "native", value):
            return None
        return self.tx("native", sender, to, value=value)

    def _random_transfer(self) -> Tx | None:
        sender, to = self.rng.sample(self.a.pool, 2)
        balance = self.ledger.token.get(sender, 0)
        # Capped so the whale stays above 2**128 and no single transfer reshuffles the whole ranking.
        cap = min(balance // 20, 10**25)
        if cap < 1 or not self.can_pay(sender, "transfer"):
            return None
        value = self.rng.randrange(1, cap + 1)
        self.ledger.token[sender] -= value
        self.ledger.token[to] = self.ledger.token.get(to, 0) + value
        data = abi.encode_call("transfer(address,uint256)", to, value)
        return self.tx("transfer", sender, self.token, data)

    def _random_mint(self) -> Tx | None:
        return self.mint(self.rng.choice(self.a.pool), self.skewed(10 * MON, 4))

    def _random_burn(self) -> Tx | None:
        holder = self.rng.choice(self.a.pool)
        cap = min(self.ledger.token.get(holder, 0) // 10, 10**25)
        if cap < 1:
            return None
        amount = self.rng.randrange(1, cap + 1)
        self.ledger.token[holder] -= amount
        self.ledger.total_supply -= amount
        return self.tx("burn", self.a.deployer, self.token, abi.encode_call("burn(address,uint256)", holder, amount))

    def _random_delegate(self) -> Tx | None:
        who = self.rng.choice(self.a.pool)
        amount = min(self.skewed(MON // 10, 4), self.ledger.native.get(who, 0) // 4)
        if amount < 10**9 or not self.can_pay(who, "delegate", amount):
            return None
        return self.delegate(who, self.pick_validator(), amount)

    def _random_undelegate(self) -> Tx | None:
        led = self.ledger
        staked = sorted(key for key, stake in led.stakes.items() if stake > 0 and key[1] in led.native)
        if not staked:
            return None
        validator_id, who = self.rng.choice(staked)
        used = {wid for (v, d, wid) in led.withdrawals if v == validator_id and d == who}
        free = next((wid for wid in range(256) if wid not in used), None)
        if free is None or not self.can_pay(who, "undelegate"):
            return None
        stake = led.stakes[(validator_id, who)]
        amount = max(1, stake * self.rng.randrange(10, 101) // 100)
        led.stakes[(validator_id, who)] = stake - amount
        led.validator_stake[validator_id] -= amount
        led.withdrawals[(validator_id, who, free)] = (amount, led.epoch + 1)
        data = abi.encode_call("undelegate(uint64,uint256,uint8)", validator_id, amount, free)
        return self.tx("undelegate", who, abi.STAKING_ADDRESS, data)

    def _random_withdraw(self) -> Tx | None:
        led = self.ledger
        ready = sorted(key for key, (_, epoch) in led.withdrawals.items() if led.epoch >= epoch + 1)
        if not ready:
            return None
        validator_id, who, wid = self.rng.choice(ready)
        if not self.can_pay(who, "withdraw"):
            return None
        amount, _ = led.withdrawals.pop((validator_id, who, wid))
        led.native[who] += amount
        call = abi.encode_call("withdraw(uint64,uint8)", validator_id, wid)
        return self.tx("withdraw", who, abi.STAKING_ADDRESS, call)

    def _random_claim(self) -> Tx | None:
        led = self.ledger
        staked = sorted(key for key, stake in led.stakes.items() if stake > 0 and key[1] in led.native)
        if not staked:
            return None
        validator_id, who = self.rng.choice(staked)
        if not self.can_pay(who, "claim"):
            return None
        return self.tx("claim", who, abi.STAKING_ADDRESS, abi.encode_call("claimRewards(uint64)", validator_id))

    def epoch_change(self) -> list[Tx]:
        led = self.ledger
        led.epoch += 1
        txs = [
            self.tx(
                "epoch", self.a.system, abi.STAKING_ADDRESS, abi.encode_call("syscallOnEpochChange(uint64)", led.epoch)
            )
        ]
        for validator_id in sorted(led.validator_stake):
            if led.validator_stake[validator_id] > 0:
                amount = self.skewed(MON // 10, 2)
                data = abi.encode_call("externalReward(uint64)", validator_id)
                txs.append(self.tx("reward", self.a.rewarder, abi.STAKING_ADDRESS, data, amount))
        return txs

    # ------------------------------------------------------------ blocks
    def blocks(self) -> Iterator[BlockPlan]:
        p = self.p
        for number in range(1, p.blocks + 1):
            if number == 1:
                txs = self.block_setup()
            elif number == 2:
                txs = self.block_validators_and_mints()
            elif number == 3:
                txs = self.block_first_delegations()
            else:
                txs = self.epoch_change() if number % p.epoch_blocks == 0 else []
                for _ in range(self.rng.randrange(p.min_txs, max(p.min_txs, p.max_txs) + 1)):
                    planned = self.random_tx()
                    if planned is not None:
                        txs.append(planned)
            yield BlockPlan(number, p.genesis_timestamp + number * p.block_time, tuple(txs))


class Plan:
    """The blocks of a seeded chain, planned lazily (iterate once); ``ledger`` is the state after the blocks so far."""

    def __init__(self, params: Params, accounts: Accounts, token_bytecode: str) -> None:
        self._planner = _Planner(params, accounts, token_bytecode)
        self._started = False
        self.params = params
        self.accounts = accounts
        self.token_address = self._planner.token
        self.validator_weights = tuple(self._planner.validator_weights)

    @property
    def ledger(self) -> Ledger:
        return self._planner.ledger

    def blocks(self) -> Iterator[BlockPlan]:
        if self._started:
            raise RuntimeError("a Plan's blocks can be iterated once: make a new plan() to start over")
        self._started = True
        return self._planner.blocks()


def plan(params: Params, accounts: Accounts, token_bytecode: str) -> Plan:
    """The deterministic plan of a seeded chain (see the module docstring for its layout)."""
    return Plan(params, accounts, token_bytecode)
