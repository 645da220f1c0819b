"""What ``sam local invoke -t TEMPLATE --env-vars ENV_FILE NAME`` would run, found by SAM CLI's own code.

Run with the SAM CLI's interpreter (``.venv-sam/bin/python``, made by ``make install``):
SAM pins boto3, click and pydantic itself, so it lives in an environment of its
own. Prints one JSON object: for each NAME, the function SAM resolves (or null)
and the environment it would start it with. ``sam local invoke`` checks for a
container runtime before anything else, so without Docker the lookup is reached
through the same objects it builds (stack provider, function provider, local
Lambda runner), minus the runtime.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from samcli.commands.local.cli_common.invoke_context import InvokeContext
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.lambdafn.exceptions import FunctionNotFound


def resolve(template: str, env_file: str, names: list[str]) -> dict[str, object]:
    stacks, _ = SamLocalStackProvider.get_stacks(template)
    base = os.path.dirname(os.path.abspath(template))
    runner = LocalLambdaRunner(
        local_runtime=None,  # type: ignore[arg-type]  # the container runtime: not reached
        function_provider=SamFunctionProvider(stacks),
        cwd=base,
        real_path=base,
        env_vars_values=InvokeContext._get_env_vars_value(env_file),  # how `sam` reads --env-vars
    )
    found: dict[str, object] = {}
    for name in names:
        try:
            function = runner.get_function(name)
        except FunctionNotFound:
            found[name] = None
            continue
        config = runner.get_invoke_config(function)
        found[name] = {
            "logical_id": function.name,
            "handler": function.handler,
            "runtime": function.runtime,
            "code": config.code_abs_path,
            "layers": [layer.codeuri for layer in function.layers],
            "declared": sorted((function.environment or {}).get("Variables", {})),
            "environment": config.env_vars.resolve(),
        }
    return found


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # SAM warns about every CDK path it cannot shorten
    print(json.dumps(resolve(sys.argv[1], sys.argv[2], sys.argv[3:])))
