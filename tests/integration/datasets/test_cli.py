"""`trace-lite show-version --verify` catches tampering; `trace-lite clean-staging` sweeps finished attempts."""

from __future__ import annotations

import pytest
from trace_core.cli import main
from trace_core.datasets import commit, models
from trace_core.dispatcher import models as task_models
from trace_core.dispatcher import tasks
from typer.testing import CliRunner

from tests.integration.datasets.fixtures import parquet_file


@pytest.fixture
def cli_env(monkeypatch, database_url, moto_url, tmp_path):
    def configure(bucket: str) -> None:
        monkeypatch.setenv("TRACE_DATABASE_URL", database_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
        monkeypatch.setenv("TRACE_DATASETS_BUCKET", bucket)
        monkeypatch.setenv("TRACE_HOME", str(tmp_path / "home"))
    return configure


def test_show_version_verifies_objects_and_clean_staging_sweeps(conn, make_s3_store, make_attempt, cli_env,
                                                                tmp_path):
    # GIVEN a committed version published through a completed task
    store = make_s3_store()
    cli_env(store.bucket)
    lease = make_attempt()
    path = parquet_file(tmp_path, 0, 10)
    item = commit.stage_file(store, path, task_id=lease.task.task_id, attempt=1, cryo_dataset="blocks",
                             range_start=0, range_end=10)
    staged = models.StagedVersion(
        task_id=lease.task.task_id, attempt=1, chain_id=10143, dataset_key="cli_a/blocks", cryo_dataset="blocks",
        range_start=0, range_end=10, config_hash="0123456789abcdef", extract={}, cryo_version="0.3.2",
        files=(item,))
    tasks.complete(conn, lease.task.task_id, attempt=1, lease_token=lease.lease_token,
                   result=task_models.Success(outputs={}), on_success=commit.on_success_hook(store, [staged]))
    runner = CliRunner()

    # WHEN shown with --verify THEN it passes and names the range end-exclusively
    shown = runner.invoke(main.app, ["show-version", staged.dataset_version, "--verify"])
    assert shown.exit_code == 0, shown.output
    assert "[0, 10)" in shown.output and "verified" in shown.output

    # WHEN an object is replaced behind the registry's back THEN --verify fails naming it
    version_prefix = next(i.key for i in store.list("cryo/") if i.key.endswith(".parquet"))
    store.put_bytes(version_prefix, b"tampered")
    tampered = runner.invoke(main.app, ["show-version", staged.dataset_version, "--verify"])
    assert tampered.exit_code == 1 and "MISMATCH" in tampered.output

    # WHEN staging is cleaned with no grace period THEN the finished attempt's prefix goes
    cleaned = runner.invoke(main.app, ["clean-staging", "--older-than-hours", "0"])
    assert cleaned.exit_code == 0, cleaned.output
    assert f"staging/{lease.task.task_id}/attempt-1/" in cleaned.output
    assert list(store.list("staging/")) == []
