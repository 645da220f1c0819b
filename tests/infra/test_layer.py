"""Which layer a synthesis uses (trace_cdk.layer): built when missing, and never deployed without its dependencies."""

from __future__ import annotations

from pathlib import Path

import pytest
from trace_cdk import config, errors, layer

from tests.infra.conftest import Synthesized


def _layer(root: Path, *, with_dependencies: bool) -> Path:
    package = root / "python" / "trace_core"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if with_dependencies:  # what pip --target leaves beside each installed package
        (root / "python" / "pydantic-2.14.4.dist-info").mkdir()
    return root


def test_a_fresh_clone_gets_a_trace_core_only_layer_that_is_not_deployable(tmp_path: Path) -> None:
    # GIVEN no layer built (an empty build folder)
    chosen = layer.resolve(config.Assets(build_dir=tmp_path / "build"))
    # THEN the synthesis builds one with the real trace_core, and says it cannot be deployed and why
    assert chosen.path == tmp_path / "build" / layer.SYNTH_ONLY / "layer"
    assert (chosen.path / "python" / "trace_core" / "settings.py").is_file()
    assert not chosen.deployable
    assert chosen.note and "scripts/build_lambda_assets.sh" in chosen.note


def test_the_full_layer_in_build_is_used_and_deployable(tmp_path: Path) -> None:
    built = _layer(tmp_path / "build" / "layer", with_dependencies=True)
    chosen = layer.resolve(config.Assets(build_dir=tmp_path / "build"))
    assert (chosen.path, chosen.deployable, chosen.note) == (built, True, None)
    assert not (tmp_path / "build" / layer.SYNTH_ONLY).exists()


def test_a_layer_without_dependencies_is_not_deployable_wherever_it_comes_from(tmp_path: Path) -> None:
    # e.g. scripts/build_lambda_assets.sh --no-deps, named with -c trace:layerDir
    no_deps = _layer(tmp_path / "mine", with_dependencies=False)
    chosen = layer.resolve(config.Assets(layer_dir=no_deps, build_dir=tmp_path / "build"))
    assert chosen.path == no_deps and not chosen.deployable
    assert chosen.note and str(no_deps) in chosen.note


def test_a_named_layer_folder_that_is_not_built_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(errors.AssetMissingError) as caught:
        layer.resolve(config.Assets(layer_dir=tmp_path / "nowhere", build_dir=tmp_path / "build"))
    assert caught.value.details["path"] == str(tmp_path / "nowhere")
    assert "scripts/build_lambda_assets.sh" in caught.value.details["fix"]


def test_a_template_with_a_synth_only_layer_refuses_deployment(synthesized: Synthesized) -> None:
    # The session's synthesis uses a trace_core-only layer (conftest): CloudFormation must reject it.
    template = synthesized.template.to_json()
    (assertion,) = template["Rules"][layer.RULE]["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": layer.PARAMETER}, layer.DEPLOYABLE]}
    assert template["Parameters"][layer.PARAMETER]["Default"] == layer.SYNTH_ONLY
