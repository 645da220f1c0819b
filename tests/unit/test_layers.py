"""The direction of dependencies, checked over the import graph (docs/architecture.md, "Layers").

Every module of ``trace_core``, ``trace_cdk`` and ``functions/*/handler.py`` is parsed, never
imported; every import statement counts, those inside functions too. From the inside out:

- ``trace_core.platform``, the declaration: the standard library, pydantic and ``trace_core.errors``;
- the product (every other package of ``trace_core``): the declaration and itself;
- ``trace_core.lite``, the local profile: the product, never the CLI;
- ``trace_core.cli``, ``trace-lite``: anything of ``trace_core``; nothing imports it;
- the deployables' shells, ``trace_cdk`` and ``functions/``: the product, never Lite or the CLI.

Inside the product, each library with I/O has its adapter (boto3 only in ``aws``, Cryo only in
``ingest.extract``, ...), the pure cores reach no I/O library at all, and what each production image
runs imports only what that image installs.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.metadata
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from trace_core.worker import registry

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"trace_core": ROOT / "layers" / "trace_core" / "trace_core", "trace_cdk": ROOT / "cdk" / "trace_cdk"}
FUNCTIONS = ROOT / "functions"


@dataclasses.dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # a module of ours when it names one (``from pkg import module``), else the name as written
    line: int
    runtime: bool  # False under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


Graph = Mapping[str, tuple[Import, ...]]


def _module_names() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for handler in FUNCTIONS.glob("*/handler.py"):
        found[f"functions.{handler.parent.name}.handler"] = handler
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, source: str, known: Iterable[str], *, is_package: bool = False) -> tuple[Import, ...]:
    """Every import in ``source`` (the text of ``module``), relative ones resolved."""
    known = set(known)
    found: list[Import] = []

    def visit(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runtime)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, node.lineno, runtime) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.append(Import(module, target if target in known else base, node.lineno, runtime))
        for child in ast.iter_child_nodes(node):
            visit(child, runtime)

    visit(ast.parse(source), True)
    return tuple(found)


@functools.cache
def graph() -> Graph:
    modules = _module_names()
    return {
        name: imports_of(name, path.read_text(), modules, is_package=path.name == "__init__.py")
        for name, path in modules.items()
    }


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer(name: str) -> str:
    """The layer of a module of ours, or ``external`` (the standard library and third-party packages)."""
    for prefix, name_of_layer in (("trace_core.platform", "platform"), ("trace_core.lite", "lite"),
                                  ("trace_core.cli", "cli"), ("trace_core", "product"), ("trace_cdk", "cdk"),
                                  ("functions", "functions")):
        if _within(name, prefix):
            return name_of_layer
    return "external"


# What each layer may import besides external packages, and the rule as a violation states it.
LAYERS: dict[str, tuple[frozenset[str], str]] = {
    "platform": (frozenset({"platform"}),
                 "the platform declaration imports only the standard library, pydantic and trace_core.errors"),
    "product": (frozenset({"product", "platform"}),
                ("product packages never import the Lite shell (trace_core.lite), the CLI (trace_core.cli) "
                 "or the CDK app (trace_cdk)")),
    "lite": (frozenset({"lite", "product", "platform"}),
             "the Lite shell imports the product, never the CLI (trace_core.cli) or the CDK app (trace_cdk)"),
    "cli": (frozenset({"cli", "lite", "product", "platform"}),
            "the CLI is the outermost layer: it imports trace_core, never the CDK app (trace_cdk)"),
    "cdk": (frozenset({"cdk", "product", "platform"}),
            "the CDK app imports the product and the declaration, never the Lite shell or the CLI"),
    "functions": (frozenset({"product", "platform"}),
                  ("a Lambda handler imports the product and the declaration, never the Lite shell, the CLI "
                   "or the CDK app")),
}
PLATFORM_EXTERNAL = ("pydantic",)
PLATFORM_OURS = ("trace_core.errors",)  # the root error: it imports nothing of ours


def layer_violations(imports: Graph) -> list[str]:
    """Each import that points outwards, naming importer, imported module and the rule."""
    found = []
    for module, module_imports in sorted(imports.items()):
        allowed, rule = LAYERS[layer(module)]
        for imp in module_imports:
            target = layer(imp.imported)
            if target == "external":
                continue
            if target not in allowed and not (layer(module) == "platform" and imp.imported in PLATFORM_OURS):
                found.append(f"{imp}: {rule}")
    return found


def platform_violations(imports: Graph) -> list[str]:
    """Third-party imports of the declaration (it must load anywhere: CDK synth, a Lambda, the Lite host)."""
    _, rule = LAYERS["platform"]
    return [
        f"{imp}: {rule}"
        for module, module_imports in sorted(imports.items()) if layer(module) == "platform"
        for imp in module_imports
        if layer(imp.imported) == "external" and not _stdlib(imp.imported)
        and not any(_within(imp.imported, allowed) for allowed in PLATFORM_EXTERNAL)
    ]


def _stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names


# Each library that does I/O (or draws, or parses a command line) and the only modules that import it.
ADAPTERS: dict[str, tuple[str, ...]] = {
    "boto3": ("trace_core.aws",),  # clients are built in one place, from settings
    "cryo": ("trace_core.ingest.extract",),
    "typer": ("trace_core.cli",),
    "rich": ("trace_core.cli",),
    "moto": ("trace_core.lite",),
    "pgserver": ("trace_core.lite",),
    "werkzeug": ("trace_core.lite",),
    "matplotlib": ("trace_core.analytics.plots",),
}


def adapter_violations(imports: Graph) -> list[str]:
    found = []
    for module, module_imports in sorted(imports.items()):
        if not _within(module, "trace_core"):
            continue
        for imp in module_imports:
            library = imp.imported.split(".")[0]
            owners = ADAPTERS.get(library)
            if owners is not None and not any(_within(module, owner) for owner in owners):
                found.append(f"{imp}: {library} is imported only by {', '.join(owners)} (its adapter)")
    return found


def closure(imports: Graph, start: Iterable[str], *, runtime_only: bool = False) -> tuple[set[str], list[Import]]:
    """The modules of ours that ``start`` reaches, and their imports of external packages.

    ``from pkg import name`` reaches ``pkg`` (its ``__init__`` runs) and, when ``name`` is a module, that too.
    """
    seen: set[str] = set()
    external: list[Import] = []
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in imports)
        for imp in imports[module]:
            if runtime_only and not imp.runtime:
                continue
            if imp.imported in imports:
                todo.append(imp.imported)
            elif layer(imp.imported) == "external":
                external.append(imp)
            else:  # ``import pkg.module`` of a package of ours whose module is found by prefix
                todo.extend(p for p in _prefixes(imp.imported) if p in imports)
    return seen, external


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


IO_LIBRARIES = ("psycopg", "psycopg_pool", "boto3", "botocore", "httpx", "duckdb", "cryo", "socket",
                "subprocess", "uvicorn", "fastapi", "moto", "aws_lambda_powertools")
# The pure cores: rules and shapes with no I/O, tested on their own (docs/architecture.md).
PURE = ("trace_core.errors", "trace_core.redact", "trace_core.platform", "trace_core.decode",
        "trace_core.dispatcher.lifecycle", "trace_core.dispatcher.models", "trace_core.datasets.naming",
        "trace_core.datasets.models", "trace_core.chainsync.spec", "trace_core.query.gate",
        "trace_core.sink.core", "trace_core.queue.base", "trace_core.analytics.catalog",
        "trace_core.analytics.render", "trace_core.analytics.windows", "trace_core.analytics.metrics",
        "trace_core.udf.errors", "trace_core.udf.paths", "trace_core.udf.manifest", "trace_core.udf.signing",
        "trace_core.udf.models", "trace_core.udf.archive")


def pure_violations(imports: Graph, pure: Iterable[str] = PURE) -> list[str]:
    found = []
    for core in pure:
        members = [m for m in imports if _within(m, core)]
        assert members, f"{core}: no such module (update PURE)"
        _, external = closure(imports, members)
        found += [f"{imp}, reached from {core}: a pure core reaches no I/O library"
                  for imp in external if imp.imported.split(".")[0] in IO_LIBRARIES]
    return found


def _distributions(requirements: Path) -> set[str]:
    names = {m[1] for m in re.finditer(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==", requirements.read_text(), re.MULTILINE)}
    return {_normal(n) for n in names}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_violations(imports: Graph, start: Iterable[str], installed: set[str], image: str) -> list[str]:
    """Imports that what ``image`` runs makes of packages it does not install."""
    owners = importlib.metadata.packages_distributions()
    _, external = closure(imports, start, runtime_only=True)
    found = []
    for imp in external:
        top = imp.imported.split(".")[0]
        if _stdlib(top):
            continue
        dists = {_normal(d) for d in owners.get(top, [])}
        if not dists & installed:
            found.append(f"{imp}: the {image} image does not install {' or '.join(sorted(dists)) or top}")
    return sorted(set(found))


# ---------------------------------------------------------------- the rules hold


def test_each_layer_imports_only_the_layers_inside_it() -> None:
    assert layer_violations(graph()) == []


def test_the_platform_declaration_imports_only_the_standard_library_and_pydantic() -> None:
    assert any(layer(m) == "platform" for m in graph()), "trace_core.platform is missing"
    assert platform_violations(graph()) == []


def test_each_io_library_is_imported_only_by_its_adapter() -> None:
    assert adapter_violations(graph()) == []


def test_the_pure_cores_reach_no_io_library() -> None:
    assert pure_violations(graph()) == []


def _operator_modules() -> list[str]:
    return sorted({path.partition(":")[0] for path in registry.CATALOGUE.values()})


def _handlers() -> list[str]:
    return sorted(m for m in graph() if layer(m) == "functions")


# Each production image, the file its packages come from, and what it runs.
IMAGES = {
    "worker": ("services/worker/requirements.txt", (), lambda: ["trace_core.worker.__main__", *_operator_modules()]),
    "query": ("services/query/requirements.txt", (), lambda: ["trace_core.query.service.__main__"]),
    # The trace_core layer; the Lambda runtime brings boto3 (assets.py keeps it out of the layer).
    "lambda": ("layers/trace_core/requirements-lambda.txt", ("boto3", "botocore", "s3transfer"), _handlers),
}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_production_image_installs_every_package_its_entry_points_import(image: str) -> None:
    # GIVEN the packages the image installs (exported from uv.lock by `make lock`)
    requirements, runtime, entry_points = IMAGES[image]
    installed = _distributions(ROOT / requirements) | set(runtime)
    # WHEN what its entry points run is followed through every import (the worker's operators included)
    start = entry_points()
    assert start
    # THEN each package it imports is installed there, and nothing of Lite, the CLI or the CDK app is reached
    assert image_violations(graph(), start, installed, image) == []
    reached, _ = closure(graph(), start)
    assert sorted(m for m in reached if layer(m) in ("lite", "cli", "cdk")) == []


# ---------------------------------------------------------------- the checks can fail


def _graph_of(sources: dict[str, str]) -> Graph:
    return {name: imports_of(name, text, sources, is_package=False) for name, text in sources.items()}


def test_an_outward_import_is_reported_with_importer_imported_and_rule() -> None:
    # GIVEN a product module importing the Lite shell inside a function, and the CDK app importing the CLI
    sources = {
        "trace_core.analytics.service": "def ports():\n    from trace_core.lite import stack\n",
        "trace_core.lite.stack": "from trace_core.cli import context\n",
        "trace_core.cli.context": "from trace_core.lite import state\n",
        "trace_core.lite.state": "",
        "trace_cdk.names": "import trace_core.cli.context\n",
        "trace_core.platform.declaration": "import boto3\nfrom trace_core import errors\n",
        "trace_core.errors": "",
    }
    # WHEN the rules are checked
    found = layer_violations(_graph_of(sources)) + platform_violations(_graph_of(sources))
    # THEN each outward import is named with its line and rule; inward ones (cli -> lite) pass
    assert found == [
        "trace_cdk.names (line 1) imports trace_core.cli.context: " + LAYERS["cdk"][1],
        "trace_core.analytics.service (line 2) imports trace_core.lite.stack: " + LAYERS["product"][1],
        "trace_core.lite.stack (line 1) imports trace_core.cli.context: " + LAYERS["lite"][1],
        "trace_core.platform.declaration (line 1) imports boto3: " + LAYERS["platform"][1],
    ]


def test_an_io_library_reached_from_a_pure_core_or_missing_from_an_image_is_reported() -> None:
    # GIVEN a pure core that reaches psycopg through a helper, and a worker that imports typer
    sources = {
        "trace_core.datasets.naming": "from trace_core.datasets import helper\n",
        "trace_core.datasets.helper": "if True:\n    import psycopg\n",
        "trace_core.worker.__main__": "import typer\nimport json\nfrom typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    import matplotlib\n",
    }
    imports = _graph_of(sources)
    # THEN both are named; an import made only for type checking does not count for the image (it is
    # never executed) but still for the adapter rule (the module depends on the library's types)
    assert pure_violations(imports, ["trace_core.datasets.naming"]) == [
        ("trace_core.datasets.helper (line 2) imports psycopg, reached from trace_core.datasets.naming: "
         "a pure core reaches no I/O library")]
    assert image_violations(imports, ["trace_core.worker.__main__"], {"cryo"}, "worker") == [
        "trace_core.worker.__main__ (line 1) imports typer: the worker image does not install typer"]
    assert adapter_violations(imports) == [
        "trace_core.worker.__main__ (line 1) imports typer: typer is imported only by trace_core.cli (its adapter)",
        ("trace_core.worker.__main__ (line 5) imports matplotlib: matplotlib is imported only by "
         "trace_core.analytics.plots (its adapter)")]
