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


def test_sam_finds_each_function_the_guide_names(synthesized: Synthesized) -> None:
    named = set(re.search(r"construct\s+id \(([^)]*)\)", DOC)[1].replace("`", "").replace(",", " ").split())  # type: ignore[index]
    paths = {fn.node.path.rsplit("/", 1)[-1] for fn in synthesized.stack.functions.functions.values()}
    assert named == paths
    for invoked in re.findall(r"sam local invoke -t \S+ (\w+) -e (\S+)", DOC):
        assert invoked[0] in paths and (REPO / invoked[1]).is_file(), invoked


def test_files_the_guide_runs_exist() -> None:
    for path in re.findall(r"\b((?:scripts|examples|services|layers/trace_core|cdk)/[\w./-]+\.\w+)", DOC):
        assert (REPO / path).exists(), path
