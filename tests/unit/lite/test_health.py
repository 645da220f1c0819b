"""What a dead component makes of the components that depend on it."""

from __future__ import annotations

from trace_core.lite import health, stack

DOWN = health.Health("down", "process 1 is gone")


def test_an_answering_component_with_a_dead_dependency_is_degraded_naming_it():
    own = {"postgres": DOWN, "moto": DOWN, "anvil": health.HEALTHY, "query": health.HEALTHY,
           "host": health.HEALTHY}
    assessed = health.with_dependencies(own, stack.DEPENDS_ON)
    assert assessed["query"] == health.Health("degraded", "postgres down, moto down")
    assert assessed["host"] == health.Health("degraded", "postgres down, moto down")
    assert assessed["postgres"] == DOWN and assessed["anvil"].ok


def test_a_dead_component_stays_down_and_an_unrecorded_dependency_does_not_count():
    # An external chain is not recorded when the stack runs without anvil.
    own = {"postgres": health.HEALTHY, "host": DOWN, "query": health.HEALTHY}
    assessed = health.with_dependencies(own, stack.DEPENDS_ON)
    assert assessed == {"postgres": health.HEALTHY, "host": DOWN, "query": health.HEALTHY}


def test_dependents_of_a_restarted_component_are_restarted_too():
    assert health.needs_restart("host", stack.DEPENDS_ON, {"anvil"})
    assert health.needs_restart("query", stack.DEPENDS_ON, {"postgres"})
    assert not health.needs_restart("query", stack.DEPENDS_ON, {"anvil"})
    assert not health.needs_restart("moto", stack.DEPENDS_ON, {"postgres"})
