"""The Fargate images install only what they run: their own extra, never `lite` (docs/architecture.md, "Layers").

What each image's entry point imports is checked against its requirements in tests/unit/test_layers.py.
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from tests.infra.conftest import REPO

REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==", re.MULTILINE)
COMMANDS = {"worker": ["python", "-m", "trace_core.worker"], "query": ["python", "-m", "trace_core.query.service"]}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(image: str) -> set[str]:
    return {_normal(m[1]) for m in REQUIREMENT.finditer((REPO / "services" / image / "requirements.txt").read_text())}


def _extra(name: str) -> set[str]:
    """The packages an extra of pyproject.toml names itself (not through another extra)."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {_normal(re.split(r"[\s\[<>=;!~]", spec, maxsplit=1)[0]) for spec in extras[name]}
    return names - {"trace-platform"}


@pytest.mark.parametrize("image", sorted(COMMANDS))
def test_an_image_installs_its_extra_and_none_of_the_lite_packages(image: str) -> None:
    # GIVEN the packages the image installs (exported from uv.lock with the image's extra by `make lock`)
    installed = _installed(image)
    # THEN its own extra is there, and nothing only Lite needs (the CLI, pgserver, moto, matplotlib)
    assert _extra(image) <= installed
    lite_only = _extra("lite")
    assert {"typer", "rich", "pgserver", "moto", "matplotlib"} <= lite_only
    assert installed & lite_only == set()
    # AND what the other image runs stays out: Cryo is the worker's, the HTTP server the Query Service's
    other = ({"worker", "query"} - {image}).pop()
    assert installed & _extra(other) == set()


def test_the_lite_extra_includes_both_images_extras() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "trace-platform[worker,query]" in extras["lite"]


@pytest.mark.parametrize("image", sorted(COMMANDS))
def test_a_dockerfile_installs_its_own_requirements_and_runs_its_entry_point(image: str) -> None:
    dockerfile = (REPO / "services" / image / "Dockerfile").read_text()
    # THEN it installs the hashed closure of its own extra, then the project without dependencies
    assert f"pip install --require-hashes --no-deps -r services/{image}/requirements.txt" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    assert not re.search(r"\.\[|--extra|lite", re.sub(r"^#.*$", "", dockerfile, flags=re.MULTILINE))
    # AND its command is the plain module entry point (for the worker, not the `trace-lite` CLI)
    assert f"CMD {json.dumps(COMMANDS[image])}" in dockerfile
