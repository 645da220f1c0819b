"""Every name a benchmark imports from Trace exists, function-level imports included.

Benchmarks import most of Trace inside their functions (they run for minutes, and `--help` must not pay
for it), so a module moved or renamed in `trace_core` breaks a benchmark only when it runs: the chain sync
benchmark still imported `trace_core.chain.node` a day after it moved to `trace_core.lite.seeded_node`.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _trace_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every `import trace_core...` and `from trace_core... import name`."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trace_core"):
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names if alias.name.startswith("trace_core")]
    return found


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_every_trace_core_name_a_benchmark_imports_exists(path: Path) -> None:
    missing = []
    for line, module_name, name in _trace_imports(path):
        module = importlib.import_module(module_name)
        if name is None or hasattr(module, name):
            continue
        try:
            importlib.import_module(f"{module_name}.{name}")
        except ModuleNotFoundError:
            missing.append(f"{path.name}:{line}: {module_name} has no {name}")
    assert not missing, "\n".join(missing)
