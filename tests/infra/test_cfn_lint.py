"""cfn-lint passes on the synthesized template (its warnings count too, but two are by design)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import Synthesized

# W3010 "avoid hardcoding availability zones": zones are explicit per stage on purpose, so that
#   synthesis needs no AZ lookup and no credentials (docs/decisions/0401-one-stack-per-stage.md).
# W3005 "dependency already enforced": CDK adds explicit DependsOn next to Ref/GetAtt; harmless.
IGNORED = ("W3010", "W3005")


def lint(template: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "parseable",
            "--ignore-checks",
            *IGNORED,
            "--",
            str(template),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cfn_lint_passes_on_the_template(synthesized: Synthesized) -> None:
    template = synthesized.outdir / synthesized.stack.template_file
    result = lint(template)
    assert result.returncode == 0, result.stdout + result.stderr
