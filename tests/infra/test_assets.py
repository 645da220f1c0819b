"""The Lambda layer build (no Docker): pins agree with the tested versions, forbidden packages stay out."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from trace_cdk import assets, errors

REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]+\])?==(?P<version>\S+)$")
ROOT = Path(__file__).resolve().parents[2]


def _locked_versions() -> dict[str, set[str]]:
    """Each package's versions in uv.lock (a universal lock may hold two, one per Python version)."""
    versions: dict[str, set[str]] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        versions.setdefault(package["name"], set()).add(package.get("version", ""))
    return versions


def test_the_lock_and_every_file_derived_from_it_are_in_step() -> None:
    # WHEN the lock is checked (offline) against pyproject.toml, and the derived requirement files against the lock
    result = subprocess.run([str(ROOT / "scripts" / "lock.sh"), "--check"], capture_output=True, text=True,
                            env={**os.environ, "UV": str(Path(sys.executable).with_name("uv"))}, check=False)
    # THEN nothing is out of date (else: `make lock`)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("derived", ["layers/trace_core/requirements-lambda.txt", "services/worker/requirements.txt",
                                     "services/query/requirements.txt", "requirements-uv.txt"])
def test_every_derived_pin_is_the_locked_version(derived: str) -> None:
    # GIVEN a requirement file derived from uv.lock (the Lambda layer, the Fargate images, uv itself)
    pins = assets.requirements(ROOT / derived)
    locked = _locked_versions()
    assert pins
    for line in pins:
        match = REQUIREMENT.match(line)
        # THEN each line is an exact pin of a version the lock holds for that package
        assert match, f"{line!r}: not an exact pin"
        assert match["version"] in locked[match["name"].lower().replace("_", "-")], line
    # AND every pin carries hashes, so pip takes exactly the locked files
    text = (ROOT / derived).read_text()
    assert text.count("--hash=sha256:") >= len(pins)


def test_no_forbidden_package_is_in_the_layer() -> None:
    names = {REQUIREMENT.match(line)["name"].lower() for line in assets.requirements()}  # type: ignore[index]
    assert "pydantic" in names and "aws-lambda-powertools" in names
    assert not names & set(assets.FORBIDDEN)


def test_pip_installs_the_locked_hashed_manylinux_wheels_for_lambda_python(tmp_path: Path) -> None:
    command = assets.pip_command(tmp_path)
    assert command[-4:] == ["--no-deps", "--require-hashes", "-r", str(assets.REQUIREMENTS)]
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


LOCKS = ["uv.lock", "package-lock.json", "requirements-uv.txt", "layers/trace_core/requirements-lambda.txt",
         "services/worker/requirements.txt", "services/query/requirements.txt", "pyproject.toml", "package.json"]


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="checks the git checkout the tests run in")
def test_installing_leaves_the_locks_as_committed() -> None:
    # GIVEN a checkout on which `make install` has run (make test runs it first: uv sync --locked, npm ci)
    # THEN the installs rewrote no lock: a fresh clone stays clean
    result = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", *LOCKS],
                            capture_output=True, text=True, check=True)
    assert result.stdout == "", f"`make install` changed committed locks:\n{result.stdout}"
