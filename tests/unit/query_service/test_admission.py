"""The fair queue and the crash breaker alone (pure, threads only): who gets the next slot, when to retry."""

from __future__ import annotations

import threading
import time

import pytest
from trace_core.query.service import admission, breaker, errors


def test_a_freed_slot_goes_to_the_principal_with_fewest_running_not_the_oldest_waiter():
    # GIVEN 2 slots, 2 per principal, both held by "heavy", which also has a query waiting
    gate = admission.Admission(slots=2, per_principal=2, queued_per_principal=2, max_wait_s=5, run_s=30)
    order: list[str] = []
    held = [gate.slot("heavy"), gate.slot("heavy")]
    for slot in held:
        slot.__enter__()

    def wait_for(principal: str) -> None:
        with gate.slot(principal):
            order.append(principal)

    waiters = [threading.Thread(target=wait_for, args=("heavy",))]
    waiters[0].start()
    time.sleep(0.1)
    waiters.append(threading.Thread(target=wait_for, args=("light",)))
    waiters[1].start()
    time.sleep(0.1)
    # WHEN one slot frees
    held[0].__exit__(None, None, None)
    time.sleep(0.1)
    # THEN the light principal, though it came later, gets it first
    assert order[:1] == ["light"]
    held[1].__exit__(None, None, None)
    for waiter in waiters:
        waiter.join(5)
    assert order == ["light", "heavy"]


def test_over_its_limits_a_principal_is_refused_with_when_to_retry():
    now = [100.0]
    gate = admission.Admission(slots=4, per_principal=1, queued_per_principal=0, max_wait_s=1, run_s=30,
                               clock=lambda: now[0])
    with gate.slot("p"):
        now[0] += 10
        with pytest.raises(errors.ConcurrencyLimitError) as info:
            gate.slot("p").__enter__()
    assert info.value.details["retry_after_s"] == 20


def test_retry_after_follows_how_long_queries_have_been_taking():
    # GIVEN queries that took about 2 s each (with a 30 s deadline)
    now = [100.0]
    gate = admission.Admission(slots=4, per_principal=1, queued_per_principal=0, max_wait_s=1, run_s=30,
                               clock=lambda: now[0])
    for _ in range(5):
        with gate.slot("p"):
            now[0] += 2
    # WHEN the principal is over its limit 1 s into its next query
    with gate.slot("p"):
        now[0] += 1
        with pytest.raises(errors.ConcurrencyLimitError) as info:
            gate.slot("p").__enter__()
    # THEN it is told to come back when that query is likely done (2 x 2 s past its start), not in 29 s
    assert info.value.details["retry_after_s"] == 3


def test_the_breaker_opens_after_n_crashes_in_the_window_and_closes_after_the_cooldown():
    now = [0.0]
    trip = breaker.CrashBreaker(crashes=2, window_s=10, cooldown_s=60, clock=lambda: now[0])
    assert trip.record_crash("p") is False
    now[0] = 11  # the first crash has left the window
    assert trip.record_crash("p") is False
    now[0] = 12
    assert trip.record_crash("p") is True
    trip.check("q")  # others are not affected
    with pytest.raises(errors.CircuitOpenError) as info:
        trip.check("p")
    assert info.value.details["retry_after_s"] == 60
    now[0] = 72
    trip.check("p")
