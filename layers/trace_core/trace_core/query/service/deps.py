"""Builds the Query Service's dependencies from settings, once per process (tests pass their own)."""

from __future__ import annotations

from pathlib import Path

from trace_core import aws
from trace_core.auth import keys
from trace_core.db import conninfo
from trace_core.db import pool as db_pool
from trace_core.query.service import (
    admission,
    attempts,
    audit,
    breaker,
    cache,
    engine,
    grants,
    pipeline,
    results,
)
from trace_core.query.service import sandbox as sandbox_mod
from trace_core.settings import Settings


def cache_root(settings: Settings) -> Path:
    return settings.home / "cache" / "datasets"


def limits(settings: Settings) -> pipeline.Limits:
    return pipeline.Limits(
        timeout_s=settings.query_timeout_s, memory_mb=settings.query_memory_mb,
        inline_max_bytes=settings.query_inline_max_bytes, max_rows=settings.query_max_rows,
        export_max_bytes=settings.query_export_max_bytes,
    )


def admission_of(settings: Settings) -> admission.Admission:
    per_principal = settings.query_max_running_per_principal or max(1, settings.query_workers // 2)
    return admission.Admission(
        slots=settings.query_workers, per_principal=per_principal,
        queued_per_principal=settings.query_max_queued_per_principal, max_wait_s=settings.query_queue_wait_s,
        run_s=settings.query_timeout_s,
    )


def breaker_of(settings: Settings) -> breaker.CrashBreaker:
    return breaker.CrashBreaker(crashes=settings.query_breaker_crashes, window_s=settings.query_breaker_window_s,
                                cooldown_s=settings.query_breaker_cooldown_s)


def build_service(settings: Settings, *, sandbox: sandbox_mod.Sandbox | None = None) -> pipeline.QueryService:
    """A QueryService wired to Postgres, S3 and the key store named by ``settings`` (and the real sandbox)."""
    pool = db_pool.get(conninfo.resolve(settings), max_size=settings.db_pool_max)
    # The sandbox workers may read only under the cache, and confinement needs the folder to exist at start.
    cache_root(settings).mkdir(parents=True, exist_ok=True)
    s3 = aws.s3_client(settings)
    return pipeline.QueryService(
        keys=keys.from_settings(settings),
        issuer=settings.token_issuer,
        sandbox=sandbox or engine.SandboxEngine.start(settings, data_roots=(cache_root(settings),)),
        resolver=grants.Resolver(
            grants.PostgresVersions(pool),
            cache.VerifiedCache(cache_root(settings), cache.S3Blobs(s3, settings.datasets_bucket)),
        ),
        audit_log=audit.PostgresAuditLog(pool),
        exporter=results.S3ResultsExporter(s3, settings.results_bucket),
        attempts=attempts.PostgresTaskAttempts(pool),
        limits=limits(settings),
        admission=admission_of(settings),
        breaker=breaker_of(settings),
    )
