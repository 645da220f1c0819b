"""The committed contract artifacts are what the pinned solcjs makes of the sources (runs Node: not a unit test)."""

from __future__ import annotations

from trace_core.chain import artifacts
from trace_core.lite import anvil


def test_recompiling_with_pinned_solcjs_reproduces_the_artifacts():
    # GIVEN the pinned solcjs WHEN it compiles the sources THEN the output is byte-identical to the committed file
    fresh = artifacts.compile_sources(anvil.project_root())
    assert artifacts.render(fresh) == artifacts.ARTIFACTS_FILE.read_text()
