"""docs/deploy.md stays true: the outputs, function names, files and events it uses exist."""

from __future__ import annotations

import re

from tests.infra.conftest import REPO, Synthesized

DOC = (REPO / "docs" / "deploy.md").read_text()


def test_every_stack_output_the_guide_reads_exists(synthesized: Synthesized) -> None:
    used = set(re.findall(r"\bout (\w+)\)", DOC))
    assert {"ApiUrl", "ClusterName", "WorkerServiceName", "WorkerLogGroupName", "AlarmTopicArn"} <= used
    outputs = set(synthesized.template.to_json()["Outputs"])
    assert used <= outputs, used - outputs


def test_files_the_guide_runs_exist() -> None:
    for path in re.findall(r"\b((?:scripts|examples|services|layers/trace_core|cdk)/[\w./-]+\.\w+)", DOC):
        assert (REPO / path).exists(), path
