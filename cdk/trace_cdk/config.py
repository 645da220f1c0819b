"""The stage configuration: ``cdk.json`` context validated into one frozen model.

``cdk.json`` holds ``trace:stages`` (a mapping of stage name to settings) and the
default ``trace:stage``. Select another with ``cdk synth -c trace:stage=prod``;
override the account or region of the selected stage with ``-c trace:account=...``
and ``-c trace:region=...``. Nothing here calls AWS: availability zones are
listed explicitly, so synthesis needs no lookups and no credentials.

A bad value raises :class:`~trace_cdk.errors.InfraConfigError` naming the field
(``trace:stages.dev.database.instance_type``) and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trace_cdk import errors

REPO_ROOT = Path(__file__).resolve().parents[2]

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)

# Fargate's valid CPU units -> memory (MiB) ranges.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
_FARGATE_MEMORY: dict[int, tuple[int, int, int]] = {  # cpu -> (min, max, step)
    256: (512, 2048, 512),
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}

_FROZEN = ConfigDict(frozen=True, extra="forbid")

Days = Annotated[int, Field(ge=1, le=3650)]


class DatabaseSize(BaseModel):
    """RDS PostgreSQL sizing and protection."""

    model_config = _FROZEN

    instance_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")] = "t4g.micro"
    allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 20
    max_allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 100
    multi_az: bool = False
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    deletion_protection: bool = True

    @model_validator(mode="after")
    def _storage_bounds(self) -> DatabaseSize:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError("max_allocated_storage_gb must be >= allocated_storage_gb")
        return self


class ServiceSize(BaseModel):
    """A Fargate service: task size and how many tasks run."""

    model_config = _FROZEN

    cpu: int = 512
    memory_mib: int = 1024
    desired_count: Annotated[int, Field(ge=0, le=100)] = 1

    @model_validator(mode="after")
    def _fargate_combination(self) -> ServiceSize:
        if self.cpu not in _FARGATE_MEMORY:
            raise ValueError(f"cpu must be one of {sorted(_FARGATE_MEMORY)} (Fargate CPU units)")
        low, high, step = _FARGATE_MEMORY[self.cpu]
        if not (low <= self.memory_mib <= high and (self.memory_mib - low) % step == 0):
            raise ValueError(
                f"memory_mib {self.memory_mib} does not fit cpu {self.cpu}: "
                f"Fargate accepts {low}..{high} in steps of {step}"
            )
        return self


class QuerySize(ServiceSize):
    """The Query Service: a Fargate service behind an internal load balancer."""

    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    workers: Annotated[int, Field(ge=1, le=64)] = 2  # sandboxed DuckDB processes per task
    health_check_path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_.-]*$")] = "/healthz"


class StageConfig(BaseModel):
    """Everything that differs between stages. Defaults suit a small dev stage."""

    model_config = _FROZEN

    stage: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    account: Annotated[str, Field(pattern=r"^\d{12}$")] | None = None
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")] = "us-east-1"
    availability_zones: Annotated[list[str], Field(min_length=2, max_length=3)] = ["us-east-1a", "us-east-1b"]
    vpc_cidr: Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")] = "10.40.0.0/16"
    # NAT gateways serve only the named egress subnets (RPC egress, delivery egress).
    nat_gateways: Annotated[int, Field(ge=1, le=3)] = 1
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_retention_days: int = 30
    chain_id: Annotated[int, Field(gt=0)] = 10143
    # Ports the Cryo workers may reach on the internet (JSON-RPC over HTTPS by default).
    rpc_egress_ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], Field(min_length=1)] = [443]
    lambda_memory_mb: Annotated[int, Field(ge=128, le=10240)] = 512
    api_throttle_rate: Annotated[float, Field(gt=0)] = 50.0
    api_throttle_burst: Annotated[int, Field(gt=0)] = 100
    database: DatabaseSize = DatabaseSize()
    query: QuerySize = QuerySize()
    worker: ServiceSize = ServiceSize()
    delivery: ServiceSize = ServiceSize(cpu=256, memory_mib=512)
    scratch_expiration_days: Days = 7
    results_expiration_days: Days = 30
    staging_expiration_days: Days = 7
    staging_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_/-]*/$")] = "staging/"
    access_log_expiration_days: Days = 90
    # Alarm thresholds.
    task_failure_rate_percent: Annotated[float, Field(gt=0, le=100)] = 20.0
    outbox_age_seconds: Annotated[int, Field(gt=0)] = 300
    alarm_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    # Prebuilt image URIs by service ("query", "worker"); unset services build from services/*/Dockerfile.
    images: dict[Literal["query", "worker"], str] = {}

    @field_validator("log_retention_days")
    @classmethod
    def _known_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {list(LOG_RETENTION_DAYS)} (the periods CloudWatch Logs accepts)")
        return value

    @model_validator(mode="after")
    def _zones_in_region(self) -> StageConfig:
        for zone in self.availability_zones:
            if not re.fullmatch(re.escape(self.region) + r"[a-z]", zone):
                raise ValueError(
                    f"availability_zones: {zone!r} is not a zone of region {self.region!r} "
                    f"(expected e.g. {self.region}a)"
                )
        if self.nat_gateways > len(self.availability_zones):
            raise ValueError("nat_gateways must not exceed the number of availability_zones")
        return self


class Assets(BaseModel):
    """Where the Lambda assets are read from at synth.

    ``layer_dir`` unset: ``build_dir/layer`` (scripts/build_lambda_assets.sh), or, when that
    was never built, a trace_core-only layer the synthesis builds itself (``trace_cdk.layer``).
    """

    model_config = _FROZEN

    layer_dir: Path | None = None
    build_dir: Path = REPO_ROOT / "build"
    functions_dir: Path = REPO_ROOT / "functions"
    repo_root: Path = REPO_ROOT


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def stage_config(stages: Any, stage: Any, *, account: Any = None, region: Any = None) -> StageConfig:
    """The validated settings of ``stage`` from the ``trace:stages`` mapping, with overrides applied."""
    if not isinstance(stages, dict) or not stages:
        raise errors.InfraConfigError(
            "context trace:stages is missing or empty: expected a mapping of stage name to settings (see cdk.json)",
            field="trace:stages",
            expected="mapping",
        )
    if not isinstance(stage, str) or stage not in stages:
        raise errors.InfraConfigError(
            f"unknown stage {stage!r}: expected one of {sorted(stages)} (set -c trace:stage=NAME)",
            field="trace:stage",
            expected=sorted(stages),
        )
    raw = stages[stage]
    if not isinstance(raw, dict):
        raise errors.InfraConfigError(
            f"trace:stages.{stage} must be a mapping of settings", field=f"trace:stages.{stage}", expected="mapping"
        )
    values = {**raw, "stage": stage}
    if account is not None:
        values["account"] = str(account)
    if region is not None:
        values["region"] = str(region)
    try:
        return StageConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _location(first["loc"])
        field = f"trace:stages.{stage}" + (f".{where}" if where else "")
        raise errors.InfraConfigError(f"invalid {field}: {first['msg']}", field=field, expected=first["msg"]) from exc


def from_context(get: Callable[[str], Any]) -> tuple[StageConfig, Assets]:
    """Read the stage and asset locations from CDK context (``app.node.try_get_context``)."""
    # An empty value means unset, so `-c trace:account=$ACCOUNT` works offline with ACCOUNT empty.
    config = stage_config(
        get("trace:stages"),
        get("trace:stage"),
        account=get("trace:account") or None,
        region=get("trace:region") or None,
    )
    overrides = {
        key: value
        for key, value in (
            ("layer_dir", get("trace:layerDir")),
            ("build_dir", get("trace:buildDir")),
            ("functions_dir", get("trace:functionsDir")),
        )
        if value
    }
    return config, Assets.model_validate(overrides)
