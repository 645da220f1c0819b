"""How many threads Cryo's runtime gets in a worker process (that the installed Cryo honours it is tested
in tests/integration/ingest/test_cryo_threads.py)."""

from __future__ import annotations

from trace_core import settings
from trace_core.worker import cryo_threads


def test_unset_leaves_cryos_default_of_one_thread_per_core():
    environ: dict[str, str] = {}
    assert cryo_threads.apply(None, environ) == cryo_threads.cores()
    assert environ == {}
    assert settings.load({}).worker_cryo_threads is None


def test_a_setting_sizes_the_runtime_through_tokios_variable():
    environ: dict[str, str] = {}
    threads = settings.load({"TRACE_WORKER_CRYO_THREADS": "3"}).worker_cryo_threads
    assert cryo_threads.apply(threads, environ) == 3
    assert environ == {"TOKIO_WORKER_THREADS": "3"}


def test_tokios_own_variable_is_reported_when_no_setting_overrides_it():
    assert cryo_threads.apply(None, {"TOKIO_WORKER_THREADS": "5"}) == 5
    assert cryo_threads.apply(2, {"TOKIO_WORKER_THREADS": "5"}) == 2
