"""The attack corpus with the gate switched off: each attack must still be harmless in the hardened engine.

Run twice: through the engine as the service uses it (DuckDB's own single-SELECT
check on), and with that check off too, so only DuckDB's settings and the
worker's OS limits stand. Harmless means what ``tests/fixtures/query/attacks.yaml``
says for the entry, and in every case: no file outside the scratch directories
is created or changed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from trace_core.query import engine, errors

from tests.fixtures.query import corpus
from tests.integration.query import conftest

LIMITS = engine.ExecLimits(timeout_s=2, memory_mb=256, threads=2, max_rows=10_000)
IDS = corpus.attack_ids()


@pytest.fixture(scope="module")
def baseline(world: conftest.World) -> dict[str, str]:
    return world.fingerprint()


def _forbidden(world: conftest.World) -> list[str]:
    """Text that must never appear in an answer or an error."""
    return [
        world.token,  # the canary file's content and the parent's environment variable
        world.marker,  # the ungranted version's data
        "root:x:0:0",  # /etc/passwd
        str(world.secret.parent),  # the canary's location
        str(world.other.parent),  # the ungranted version's location
        str(Path.home()) + "/",  # the service account's home
        os.getcwd(),  # the service's working directory (the repository here)
    ]


def _attack(world: conftest.World, attack_id: str) -> corpus.Attack:
    return next(a for a in corpus.attacks(world.placeholders()) if a.id == attack_id)


def _check_harmless(eng: engine.Engine, world: conftest.World, attack: corpus.Attack) -> None:
    relations = world.relations()
    try:
        result = eng.execute(attack.sql, relations, LIMITS)
        text = repr(result.rows())
        outcome = "answered"
    except errors.QueryError as exc:
        text = f"{exc} {exc.details!r}"
        outcome = "error"
    # An error may echo what the attacker wrote (their own path); anything else on the list is a leak.
    leaked = [secret for secret in _forbidden(world) if secret in text and secret not in attack.sql]
    assert leaked == [], f"{attack.id} leaked {leaked}: {text[:500]}"
    if attack.harmless == "error":
        assert outcome == "error", f"{attack.id} should have failed but answered: {text[:300]}"


@pytest.mark.parametrize("attack_id", IDS)
def test_attack_is_harmless_with_the_gate_off(query_engine: engine.Engine, world: conftest.World,
                                              baseline: dict[str, str], attack_id: str) -> None:
    # GIVEN an attack the gate would reject WHEN it reaches the engine directly THEN it is harmless
    _check_harmless(query_engine, world, _attack(world, attack_id))


@pytest.mark.parametrize("attack_id", IDS)
def test_attack_is_harmless_on_settings_and_os_limits_alone(raw_engine: engine.Engine, world: conftest.World,
                                                            baseline: dict[str, str], attack_id: str) -> None:
    # GIVEN no gate and no statement check WHEN the attack runs THEN DuckDB's settings and the OS still hold
    _check_harmless(raw_engine, world, _attack(world, attack_id))
    # AND the engine still answers a plain query afterwards
    assert raw_engine.execute("SELECT 1 AS ok", {}, LIMITS).rows() == [(1,)]


def test_no_file_outside_the_scratch_directories_changed(world: conftest.World, baseline: dict[str, str]) -> None:
    # GIVEN every attack above ran on both engines THEN the cache, the canary and the rest are as they were
    assert world.fingerprint() == baseline
    assert not (world.secret.parent / "out.csv").exists()
