"""CloudFormation custom resource (through the CDK Provider framework): apply trace_core's migrations.

Runs on Create and on every Update (the stack changes the resource's
``MigrationsHash`` property whenever a migration file changes). Delete does
nothing: a stack removal never drops the schema. A failing migration fails the
deployment with the migration's message; the schema stays at the previous
version (each migration runs in its own transaction).
"""

from __future__ import annotations

from typing import Any

from trace_core import settings as settings_mod
from trace_core.db import conninfo, migrate

PHYSICAL_ID = "trace-schema"


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    url = conninfo.resolve(settings_mod.load())
    applied = migrate.apply(url)
    return {
        "PhysicalResourceId": PHYSICAL_ID,
        "Data": {"Applied": ",".join(str(v) for v in applied), "Version": str(migrate.current_version(url))},
    }
