"""The Lambda layer build (no Docker): pins agree with the tested versions, forbidden packages stay out."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from trace_cdk import assets, errors

REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]+\])?==(?P<version>\S+)$")


def test_every_requirement_is_pinned_to_the_version_the_tests_run() -> None:
    # GIVEN the layer's requirements (with and without dependencies)
    with_deps, no_deps = assets.requirements()
    assert no_deps == ["aws-xray-sdk==2.15.0", "wrapt==2.5.2"]
    for line in with_deps + no_deps:
        match = REQUIREMENT.match(line)
        # THEN each is an exact pin, equal to what this venv has installed (and the tests exercised)
        assert match, f"{line!r}: pin an exact version"
        assert importlib.metadata.version(match["name"]) == match["version"], line


def test_no_forbidden_package_is_required() -> None:
    with_deps, no_deps = assets.requirements()
    names = {REQUIREMENT.match(line)["name"].lower() for line in with_deps + no_deps}  # type: ignore[index]
    assert not names & set(assets.FORBIDDEN)


def test_pip_installs_manylinux_wheels_for_lambda_python(tmp_path: Path) -> None:
    command = assets.pip_command(["pydantic==2.14.3"], tmp_path, deps=False)
    assert command[-2:] == ["--no-deps", "pydantic==2.14.3"]
    assert "--only-binary=:all:" in command
    assert command[command.index("--python-version") + 1] == assets.PYTHON_VERSION == "3.12"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms and all(p.endswith("x86_64") and "manylinux" in p for p in platforms)
    assert command[command.index("--target") + 1] == str(tmp_path)


def test_offline_build_copies_trace_core_without_caches(tmp_path: Path) -> None:
    # WHEN the layer is built without dependencies (what the tests synthesize with)
    layer = assets.build(tmp_path, deps=False)
    # THEN it holds trace_core as Lambda expects (python/trace_core) and its SQL files, no bytecode
    package = layer / "python" / "trace_core"
    assert (package / "settings.py").is_file()
    assert list((package / "db" / "migrations").glob("0001_*.sql"))
    assert not list(layer.rglob("__pycache__"))


@pytest.mark.parametrize("package", ["botocore", "duckdb", "pyarrow", "cryo"])
def test_a_layer_with_a_forbidden_package_is_refused(tmp_path: Path, package: str) -> None:
    # GIVEN a layer folder into which a dependency dragged a forbidden package
    (tmp_path / package).mkdir()
    # WHEN it is checked
    with pytest.raises(errors.AssetBuildError) as caught:
        assets.check(tmp_path)
    # THEN the error names the package and how to fix it
    assert caught.value.details["package"] == package
    assert "requirements-lambda.txt" in caught.value.details["fix"]
