"""The settings of every deployable: Lambda handlers, services and the CLI.

Values come from the environment with the prefix ``TRACE_`` (plus the standard
``AWS_*`` variables, read as they are). ``load()`` validates once at start:
an unknown ``TRACE_*`` variable or a malformed value raises
:class:`~trace_core.errors.ConfigError` naming the variable and what was expected.

Each deployable reads only its own settings: the platform declaration
(``trace_core.platform``) names the fields of each function and service, and
its environment (CDK's, or the one the Lite host passes) carries those and
``TRACE_DEPLOYABLE``, its name. With ``TRACE_DEPLOYABLE`` set, ``load()``
refuses a ``TRACE_*`` variable the deployable does not declare, and reads no
other. Without it (the ``trace-lite`` CLI, tests) every setting is read.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from trace_core import errors, platform

Port = Annotated[int, Field(ge=0, le=65535)]

# Variables with the TRACE_ prefix that are read elsewhere on purpose (test harness).
_NOT_SETTINGS = ("TRACE_TEST_",)


class Settings(BaseSettings):
    """Validated configuration. Frozen: build a new one to change it."""

    model_config = SettingsConfigDict(env_prefix="TRACE_", frozen=True, extra="forbid", populate_by_name=True)

    # --- state ---
    database_url: str | None = Field(
        default=None, description="Postgres URL; unset in Lite means an embedded pgserver."
    )
    database_secret_arn: str | None = Field(
        default=None,
        description="AWS profile: Secrets Manager secret (RDS JSON: username, password, ...) holding the "
        "password for database_url, which carries no password there.",
    )
    db_pool_max: Annotated[int, Field(ge=1, le=200)] = 10
    home: Path = Field(
        default_factory=lambda: find_home(Path.cwd()),
        description="Lite state directory; unset: found from the working directory (find_home).",
    )

    # --- AWS APIs (standard variables, read as they are) ---
    profile: Literal["lite", "aws"] = Field(
        default="lite",
        description="lite: every AWS API is a local endpoint (moto server, LocalStack), and a process without "
        "one refuses to call AWS at all; aws: the deployed stack (set by the CDK app), real AWS endpoints.",
    )
    aws_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ENDPOINT_URL", "TRACE_AWS_ENDPOINT_URL")
    )
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION", "TRACE_AWS_REGION")
    )
    datasets_bucket: str = "datasets"
    results_bucket: str = "results"
    scratch_bucket: str = "scratch"
    bundles_bucket: str = "bundles"
    task_queue: str = platform.TASK_QUEUE
    queue_driver: Literal["pgqueue", "sqs"] = "pgqueue"

    # --- chain ---
    chain_id: Annotated[int, Field(gt=0)] = 10143
    rpc_url: str | None = Field(default=None, description="External JSON-RPC URL; unset in Lite starts anvil.")

    # --- Lite ports (0 = pick a free port at `up`) ---
    moto_port: Port = 0
    anvil_port: Port = 0
    postgres_port: Port = 0
    api_port: Port = 0

    # --- workers and the Lite host ---
    worker_pool: str = Field(
        default=platform.CHAIN_POOL,
        description="The worker pool a worker process serves (trace_core.platform: its queue and operators).",
    )
    operator_modules: str = Field(default="", description="Comma-separated modules that register operators.")
    worker_concurrency: Annotated[int, Field(ge=1, le=256)] = 32
    lease_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    host_workers: Annotated[int, Field(ge=0, le=16)] = 1
    worker_allocator: str = Field(
        default="auto", min_length=1,
        description="malloc of worker processes: auto (jemalloc, else the bundled mimalloc), system, or a "
        "library's path (trace_core.worker.allocator).",
    )
    worker_cryo_threads: Annotated[int, Field(ge=1, le=256)] | None = Field(
        default=None,
        description="Threads of Cryo's runtime in a worker process; unset: one per core. With W worker processes "
        "on one host, cores / W (trace_core.worker.cryo_threads).",
    )
    host_tick_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # Emit CloudWatch metrics (EMF lines on stdout) from long-running workers (AWS: on; Lite: off).
    emit_metrics: bool = False

    # --- query service and capability tokens ---
    query_port: Port = 0
    query_host: str = Field(default="127.0.0.1", description="Bind address (0.0.0.0 only inside a container).")
    token_issuer: Annotated[str, Field(min_length=1, max_length=200)] = "trace"
    token_keys: Literal["file", "secretsmanager"] = Field(
        default="file", description="Where token signing keys live: a 0600 file under home, or Secrets Manager."
    )
    token_keys_secret: str = Field(default="trace/token-signing-keys", description="Secrets Manager secret id.")
    query_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    query_memory_mb: Annotated[int, Field(ge=64, le=1_048_576)] = 2048
    query_inline_max_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = 8 * 1024 * 1024
    query_max_rows: Annotated[int, Field(ge=1, le=100_000_000)] = 1_000_000
    query_export_max_bytes: Annotated[int, Field(ge=1024, le=64 * 1024**3)] = 1024**3
    query_workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=2, description="Sandboxed DuckDB worker processes.")
    query_max_running_per_principal: Annotated[int, Field(ge=0, le=64)] = Field(
        default=0, description="Queries one principal may run at once; 0 = half the workers (at least 1).")
    query_max_queued_per_principal: Annotated[int, Field(ge=0, le=64)] = 2
    query_queue_wait_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    query_breaker_crashes: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=3, description="Worker crashes by one principal within query_breaker_window_s that open its circuit.")
    query_breaker_window_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    query_breaker_cooldown_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- which deployable reads these (trace_core.platform) ---
    deployable: str | None = Field(
        default=None,
        description="The function or service this process is (set by CDK and the Lite host); unset: the CLI.",
    )


HOME_DIR = ".trace-lite"
# A directory holding one of these is a project root: the search for a stack stops there.
_PROJECT_MARKERS = (".git", "pyproject.toml")


def find_home(cwd: Path) -> Path:
    """Where the Lite stack of the project around ``cwd`` lives (docs/decisions/1304).

    The nearest ``.trace-lite`` directory in ``cwd`` or above it, so every command finds the stack
    from any subdirectory; the search stops at the project root (a ``.git`` or ``pyproject.toml``),
    whose ``.trace-lite`` is the answer then; with no project around, ``cwd/.trace-lite``.
    """
    for directory in (cwd, *cwd.parents):
        if (directory / HOME_DIR).is_dir() or any((directory / m).exists() for m in _PROJECT_MARKERS):
            return directory / HOME_DIR
    return cwd / HOME_DIR


DEPLOYABLE_VARIABLE = "TRACE_DEPLOYABLE"


def variable(name: str) -> str:
    """The environment variable setting ``name`` is read from: ``TRACE_<NAME>``, or the standard one
    it takes first (``aws_endpoint_url``: ``AWS_ENDPOINT_URL``)."""
    field = Settings.model_fields.get(name)
    if field is None:
        raise errors.ConfigError(f"no setting {name!r}", variable=f"TRACE_{name.upper()}")
    if isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return f"TRACE_{name.upper()}"


def declared(deployable: str) -> tuple[str, ...]:
    """The settings ``deployable`` reads (trace_core.platform), or ConfigError naming the known ones."""
    try:
        return platform.PLATFORM.settings_of(deployable)
    except KeyError:
        known = [*platform.PLATFORM.functions, *platform.PLATFORM.services]
        raise errors.ConfigError(
            f"invalid {DEPLOYABLE_VARIABLE}={deployable!r}: expected one of {', '.join(known)}",
            variable=DEPLOYABLE_VARIABLE,
        ) from None


def environment(settings: Settings, deployable: str, names: Iterable[str] | None = None) -> dict[str, str]:
    """The environment ``deployable`` gets: the values in ``settings`` of the settings it declares (``names``,
    default: its declaration in trace_core.platform), and its name.

    What the Lite host passes each function, as CDK does on AWS; unset (None) values are left out.
    """
    env = {DEPLOYABLE_VARIABLE: deployable}
    for name in declared(deployable) if names is None else names:
        value = getattr(settings, name)
        if value is not None:
            env[variable(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _unknown_variables(environ: Mapping[str, str], names: Iterable[str]) -> list[str]:
    known = {f"TRACE_{name.upper()}" for name in names} | {DEPLOYABLE_VARIABLE}
    return sorted(
        key
        for key in environ
        if key.startswith("TRACE_") and key not in known and not key.startswith(_NOT_SETTINGS)
    )


def load(
    environ: Mapping[str, str] | None = None, *, names: Iterable[str] | None = None, **overrides: object
) -> Settings:
    """Validate the environment into a :class:`Settings`, or raise ConfigError naming the variable.

    With ``TRACE_DEPLOYABLE`` set, only that deployable's declared settings are read (``names``, default:
    its declaration in trace_core.platform); the others keep their defaults, and any other ``TRACE_*``
    variable is refused.
    """
    env = dict(os.environ if environ is None else environ)
    deployable = env.get(DEPLOYABLE_VARIABLE) or None
    if deployable is None:
        names = tuple(Settings.model_fields)
    else:
        names = ("deployable", *(declared(deployable) if names is None else names))
    unknown = _unknown_variables(env, names)
    if unknown:
        expected = ", ".join(f"TRACE_{n.upper()}" for n in names)
        owner = f" of {deployable}" if deployable else ""
        raise errors.ConfigError(f"unknown setting{owner} {unknown[0]}: expected one of {expected}",
                                 variable=unknown[0])
    # Only the variables we own go in, so the process environment cannot leak other keys in.
    fields: dict[str, object] = {}
    for name in names:
        alias = Settings.model_fields[name].validation_alias
        aliases = alias.choices if isinstance(alias, AliasChoices) else []
        for key in [*aliases, f"TRACE_{name.upper()}"]:
            if isinstance(key, str) and key in env:
                fields[name] = env[key]
                break
    fields.update(overrides)
    try:
        return Settings.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        field = Settings.model_fields.get(name)
        variable = f"TRACE_{name.upper()}"
        if field is not None and isinstance(field.validation_alias, AliasChoices):
            variable = str(field.validation_alias.choices[0])
        raise errors.ConfigError(
            f"invalid {variable}={fields.get(name)!r}: {first['msg']}", variable=variable
        ) from exc


@functools.cache
def get() -> Settings:
    """The process-wide settings, validated on first use (never at import time)."""
    return load()
