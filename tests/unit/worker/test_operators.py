"""The operator registry of a worker pool: what a worker runs, built at start, and what an operator sees."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from trace_core.platform import PLATFORM
from trace_core.worker import errors, operators, registry


def in_fresh_interpreter(code: str) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Factory: an importable module with this source; returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(source: str) -> str:
        name = f"ops_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return make


def test_by_default_a_worker_runs_every_platform_operator():
    # GIVEN a fresh interpreter WHEN a worker's registry is built without names
    listed = in_fresh_interpreter("""
        from trace_core.worker import registry
        pool = registry.for_pool()
        print(",".join(pool.names), pool.runs_cryo)
    """)
    # THEN it claims by cryo_ingest, noop and udf_invoke, and prepares Cryo
    assert listed == "cryo_ingest,noop,udf_invoke True"


def test_a_pool_that_does_not_run_cryo_ingest_never_imports_it():
    imported = in_fresh_interpreter("""
        import sys
        from trace_core.worker import registry
        pool = registry.for_pool(["noop"])
        print(",".join(pool.names), pool.runs_cryo, sorted(m for m in sys.modules if m.startswith("trace_core.ingest")))
    """)
    assert imported == "noop False []"


def test_every_declared_worker_pool_builds_from_the_catalogue():
    for pool in PLATFORM.worker_pools.values():
        assert registry.for_pool(pool.operators).names == sorted(pool.operators)


def test_an_unknown_operator_name_fails_at_start_listing_the_known_ones():
    with pytest.raises(errors.UnknownOperatorError) as caught:
        registry.for_pool(["noop", "cryo_ingset"])
    assert "'cryo_ingset'" in caught.value.message
    assert caught.value.details["known"] == ["cryo_ingest", "noop", "udf_invoke"]


def test_a_module_adds_the_operators_it_lists_and_registers_nothing_by_importing(module):
    name = module("""
        from trace_core.worker import operators

        def echo(ctx):
            return dict(ctx.payload)

        OPERATORS = {"echo": echo, "reader": operators.Operator(echo, ports={"query_token"})}
    """)
    pool = registry.for_pool(["noop"], name)
    assert pool.names == ["echo", "noop", "reader"]
    assert pool.get("echo").ports == frozenset() and pool.get("reader").ports == {"query_token"}
    # importing it again elsewhere changes no other registry
    assert registry.for_pool(["noop"]).names == ["noop"]


@pytest.mark.parametrize(("source", "says"), [
    ("X = 1", "has no OPERATORS mapping"),
    ("OPERATORS = {'noop': lambda ctx: {}}", "'noop' of module"),
    ("OPERATORS = {'cryo_ingest': lambda ctx: {}}", "'cryo_ingest' of module"),
    ("OPERATORS = {'x': 3}", "is a int, not a function or an Operator"),
    ("OPERATORS = {'': lambda ctx: {}}", "expected a non-empty string"),
])
def test_a_bad_operator_module_fails_at_start_saying_why(module, source, says):
    name = module(source)
    with pytest.raises(errors.WorkerError) as caught:
        registry.for_pool(None, name)
    assert says in caught.value.message and caught.value.details["module"] == name


def test_an_operator_defined_by_two_modules_is_refused(module):
    first, second = module("OPERATORS = {'x': lambda ctx: {}}"), module("OPERATORS = {'x': lambda ctx: {}}")
    with pytest.raises(errors.WorkerError, match=f"already defined by module '{first}'"):
        registry.for_pool(["noop"], [first, second])


def test_a_module_that_cannot_be_imported_is_named():
    with pytest.raises(errors.WorkerError) as caught:
        registry.for_pool(["noop"], " , tests.no_such_module")
    assert caught.value.details == {"field": "TRACE_OPERATOR_MODULES", "module": "tests.no_such_module"}


def test_an_operator_sees_only_the_ports_it_declared():
    ctx = operators.OperatorContext(operator="plain", task_id=uuid.uuid4(), payload={"a": 1}, attempt=2)
    assert (ctx.payload, ctx.attempt) == ({"a": 1}, 2)
    for ask in (lambda: ctx.object_store, lambda: ctx.rpc_client("http://127.0.0.1:1"), ctx.query_token):
        with pytest.raises(errors.WorkerError, match="operator 'plain' did not declare the port"):
            ask()
    given = operators.OperatorContext(operator="q", task_id=uuid.uuid4(), payload={}, attempt=1,
                                      ports=operators.Ports(query_token=lambda: "tok"))
    assert given.query_token() == "tok"
    assert not hasattr(given, "settings")


def test_an_unknown_port_is_refused_when_the_operator_is_declared():
    with pytest.raises(errors.WorkerError, match="unknown port\\(s\\) 'settings'"):
        operators.Operator(lambda ctx: {}, ports={"settings"})
