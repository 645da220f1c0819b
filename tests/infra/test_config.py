"""Stage configuration from cdk.json context: every stage validates, bad values name the field."""

from __future__ import annotations

import copy

import pytest
from trace_cdk import config, errors

from tests.infra.conftest import cdk_context


def _stages() -> dict:
    return copy.deepcopy(cdk_context()["trace:stages"])


@pytest.mark.parametrize("stage", sorted(cdk_context()["trace:stages"]))
def test_every_stage_in_cdk_json_is_valid_and_offline(stage: str) -> None:
    # GIVEN the stages shipped in cdk.json
    # WHEN one is selected
    result = config.stage_config(_stages(), stage)
    # THEN it validates, with zones listed explicitly (no AZ lookup, so no credentials at synth)
    assert result.stage == stage
    assert all(zone.startswith(result.region) for zone in result.availability_zones)


def test_default_stage_is_dev() -> None:
    assert cdk_context()["trace:stage"] == "dev"


def test_production_stage_protects_its_data() -> None:
    prod = config.stage_config(_stages(), "prod")
    assert prod.database.deletion_protection and prod.database.multi_az
    assert len(prod.availability_zones) >= 3 or prod.nat_gateways >= 2


def test_unknown_stage_names_the_choices() -> None:
    with pytest.raises(errors.InfraConfigError) as caught:
        config.stage_config(_stages(), "staging")
    assert caught.value.details["field"] == "trace:stage"
    assert "dev" in caught.value.message and "prod" in caught.value.message


def test_account_and_region_overrides_apply() -> None:
    stages = _stages()
    stages["dev"]["availability_zones"] = ["eu-west-1a", "eu-west-1b"]
    result = config.stage_config(stages, "dev", account="123456789012", region="eu-west-1")
    assert (result.account, result.region) == ("123456789012", "eu-west-1")


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        (
            lambda s: s["dev"]["query"].update(cpu=1024, memory_mib=512),
            "trace:stages.dev.query",
            "2048..8192 in steps of 1024",
        ),
        (lambda s: s["dev"].update(availability_zones=["eu-west-1a", "eu-west-1b"]), "trace:stages.dev", "not a zone"),
        (lambda s: s["dev"].update(log_retention_days=10), "trace:stages.dev.log_retention_days", "one of"),
        (lambda s: s["dev"].update(account="12345"), "trace:stages.dev.account", "pattern"),
        (lambda s: s["dev"].update(nat_gateways=0), "trace:stages.dev.nat_gateways", "greater than or equal"),
        (lambda s: s["dev"].update(surprise=True), "trace:stages.dev.surprise", "Extra inputs"),
        (
            lambda s: s["dev"]["database"].update(allocated_storage_gb=50, max_allocated_storage_gb=30),
            "trace:stages.dev.database",
            ">=",
        ),
    ],
)
def test_bad_values_name_the_field_and_what_was_expected(change, field: str, expected: str) -> None:
    # GIVEN a stage with one bad value
    stages = _stages()
    change(stages)
    # WHEN it is validated
    with pytest.raises(errors.InfraConfigError) as caught:
        config.stage_config(stages, "dev")
    # THEN the error names the setting and what fits
    assert caught.value.details["field"] == field
    assert expected in caught.value.message


def test_missing_stages_mapping_is_explained() -> None:
    with pytest.raises(errors.InfraConfigError) as caught:
        config.stage_config(None, "dev")
    assert caught.value.details["field"] == "trace:stages"


def test_asset_locations_come_from_context(tmp_path) -> None:
    context = {"trace:stages": _stages(), "trace:stage": "dev", "trace:layerDir": str(tmp_path)}
    _, assets = config.from_context(context.get)
    assert assets.layer_dir == tmp_path
    assert assets.functions_dir == config.REPO_ROOT / "functions"


def test_an_empty_account_or_region_on_the_command_line_means_unset(tmp_path) -> None:
    # `-c trace:account=$ACCOUNT` with ACCOUNT empty, as docs/deploy.md runs it offline
    context = {"trace:stages": _stages(), "trace:stage": "dev", "trace:account": "", "trace:region": "",
               "trace:buildDir": str(tmp_path)}
    stage, assets = config.from_context(context.get)
    assert stage.account is None and stage.region == _stages()["dev"]["region"]
    assert assets.build_dir == tmp_path and assets.layer_dir is None
