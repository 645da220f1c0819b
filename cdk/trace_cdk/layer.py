"""Which Lambda layer folder a synthesis uses, so ``cdk synth`` works on a fresh clone with no manual step.

- ``-c trace:layerDir=DIR``: that folder; it must hold ``python/trace_core``.
- otherwise ``build/layer`` when scripts/build_lambda_assets.sh has built it;
- otherwise a trace_core-only layer is built into ``build/synth-only/layer``
  (no network, well under a second) and a note says so on stderr.

A layer is deployable when pip installed its dependencies into it (their
``*.dist-info`` folders are there). A template synthesized with a layer that is
not refuses deployment: :func:`refuse_deployment` adds a CloudFormation rule
that fails ``cdk deploy`` before any resource changes (decision 1306).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aws_cdk as cdk

from trace_cdk import assets, config, errors

SYNTH_ONLY = "synth-only"
# The same mechanism as CDK's own CheckBootstrapVersion: a parameter whose value a rule asserts.
PARAMETER = "TraceLayerBuild"
RULE = "CheckTraceLayerIsDeployable"
DEPLOYABLE = "full"
FIX = "run scripts/build_lambda_assets.sh (the full layer, with its dependencies), then synthesize again"


@dataclasses.dataclass(frozen=True)
class Layer:
    path: Path
    deployable: bool
    note: str | None = None  # what the synthesis did about the layer, for stderr


def deployable(layer_dir: Path) -> bool:
    """Whether pip installed the layer's dependencies (a trace_core-only layer has none)."""
    return any((layer_dir / "python").glob("*.dist-info"))


def resolve(chosen: config.Assets) -> Layer:
    """The layer folder to synthesize with, building the trace_core-only one when none is built."""
    if chosen.layer_dir is not None:
        if not (chosen.layer_dir / "python" / "trace_core" / "__init__.py").is_file():
            raise errors.AssetMissingError(
                f"the trace_core layer is not built: {chosen.layer_dir}/python/trace_core is missing",
                path=str(chosen.layer_dir),
                fix="run scripts/build_lambda_assets.sh --out DIR/.. (or drop -c trace:layerDir to use build/layer)",
            )
        return _described(chosen.layer_dir)
    built = chosen.build_dir / "layer"
    if (built / "python" / "trace_core" / "__init__.py").is_file():
        return _described(built)
    layer_dir = assets.build(chosen.build_dir / SYNTH_ONLY, deps=False)
    return Layer(
        layer_dir,
        deployable=False,
        note=f"note: no Lambda layer at {built}: synthesizing with a trace_core-only layer ({layer_dir}). "
        f"Enough for synth and the tests; `cdk deploy` of this template is refused. To deploy: {FIX}.",
    )


def _described(layer_dir: Path) -> Layer:
    if deployable(layer_dir):
        return Layer(layer_dir, deployable=True)
    return Layer(
        layer_dir,
        deployable=False,
        note=f"note: the layer {layer_dir} holds trace_core only (no dependencies): "
        f"`cdk deploy` of this template is refused. To deploy: {FIX}.",
    )


def refuse_deployment(stack: cdk.Stack) -> None:
    """Make CloudFormation reject the template at change-set creation, naming the fix."""
    build = cdk.CfnParameter(
        stack,
        PARAMETER,
        type="String",
        default=SYNTH_ONLY,
        description="How the Lambda layer of this template was built (synth-only: trace_core without dependencies)",
    )
    cdk.CfnRule(
        stack,
        RULE,
        assertions=[
            cdk.CfnRuleAssertion(
                assert_=cdk.Fn.condition_equals(build.value_as_string, DEPLOYABLE),
                assert_description=f"This template was synthesized with a trace_core-only Lambda layer: {FIX}.",
            )
        ],
    )
