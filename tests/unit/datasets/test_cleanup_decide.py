"""Which staging prefixes cleanup may delete: never a live attempt's, never a recent one."""

from __future__ import annotations

import datetime as dt
import uuid

from trace_core.datasets import cleanup

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def prefix(newest: dt.datetime | None) -> cleanup.StagingPrefix:
    task = uuid.uuid4()
    return cleanup.StagingPrefix(f"staging/{task}/attempt-1/", task, 1, 3, newest)


def test_a_live_attempt_keeps_its_staging_however_old():
    assert cleanup.decide(prefix(NOW - 100 * HOUR), {"finished_at": None}, now=NOW, older_than=HOUR) is None


def test_a_finished_attempt_loses_its_staging_after_the_grace_period():
    state = {"finished_at": NOW - 2 * HOUR, "outcome": "expired"}
    assert "expired" in cleanup.decide(prefix(NOW - 2 * HOUR), state, now=NOW, older_than=HOUR)
    assert cleanup.decide(prefix(NOW - 2 * HOUR), {**state, "finished_at": NOW - 10 * dt.timedelta(minutes=1)},
                          now=NOW, older_than=HOUR) is None


def test_a_recent_write_postpones_deletion_even_for_a_finished_attempt():
    # A reaped (zombie) worker may still be uploading: wait until it has been quiet for the grace period.
    state = {"finished_at": NOW - 5 * HOUR, "outcome": "expired"}
    assert cleanup.decide(prefix(NOW - dt.timedelta(minutes=1)), state, now=NOW, older_than=HOUR) is None


def test_an_orphan_goes_after_the_grace_period():
    assert "orphan" in cleanup.decide(prefix(NOW - 2 * HOUR), None, now=NOW, older_than=HOUR)
    assert cleanup.decide(prefix(NOW - dt.timedelta(minutes=5)), None, now=NOW, older_than=HOUR) is None
