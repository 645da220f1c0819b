"""Which malloc a worker process runs under (the re-exec itself is tested with a real worker process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_core.worker import allocator


def test_system_and_non_linux_keep_glibc_malloc():
    assert allocator.choose("system") is None
    assert allocator.choose("auto", platform="darwin") is None
    assert allocator.name_of(None) == "glibc"


def test_auto_prefers_the_systems_jemalloc_then_the_bundled_mimalloc(monkeypatch):
    monkeypatch.setattr(allocator, "_jemalloc", lambda: "libjemalloc.so.2")
    monkeypatch.setattr(allocator, "_mimalloc", lambda: "/venv/cmeel.prefix/lib/libmimalloc.so")
    assert allocator.choose("auto", platform="linux") == "libjemalloc.so.2"
    monkeypatch.setattr(allocator, "_jemalloc", lambda: None)
    assert allocator.choose("auto", platform="linux") == "/venv/cmeel.prefix/lib/libmimalloc.so"
    monkeypatch.setattr(allocator, "_mimalloc", lambda: None)
    assert allocator.choose("auto", platform="linux") is None


def test_an_explicit_library_must_exist(tmp_path: Path):
    lib = tmp_path / "libtcmalloc.so"
    lib.write_bytes(b"")
    assert allocator.choose(str(lib), platform="linux") == str(lib)
    with pytest.raises(allocator.AllocatorError) as info:
        allocator.choose(str(tmp_path / "missing.so"), platform="linux")
    assert "TRACE_WORKER_ALLOCATOR" in str(info.value) and "missing.so" in str(info.value)


def test_preloaded_and_names():
    assert allocator.preloaded("libjemalloc.so.2", {"LD_PRELOAD": "/x/liba.so libjemalloc.so.2"})
    assert allocator.preloaded("libjemalloc.so.2", {"LD_PRELOAD": "libjemalloc.so.2:/x/liba.so"})
    assert not allocator.preloaded("libjemalloc.so.2", {})
    assert allocator.name_of("libjemalloc.so.2") == "jemalloc"
    assert allocator.name_of("/v/cmeel.prefix/lib/libmimalloc.so") == "mimalloc"


def test_pyarrow_allocates_through_a_preloaded_malloc_and_keeps_its_pool_without_one():
    import pyarrow

    before = pyarrow.default_memory_pool()
    try:
        assert allocator.route_arrow(None) == before.backend_name
        assert allocator.route_arrow("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2") == "system"
        assert pyarrow.default_memory_pool().backend_name == "system"
    finally:
        pyarrow.set_memory_pool(before)
