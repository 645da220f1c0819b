"""Every name the app shares between constructs, the deployables and the docs.

Construct IDs, the physical names that code relies on (queue names, read from
the platform declaration ``trace_core.platform``), and the metrics the alarms
watch. Changing a construct ID here replaces the resource on the next deploy.
"""

from __future__ import annotations

from trace_core import platform

# ---------------------------------------------------------------- stacks and constructs
PROJECT = "trace"


def stack_id(stage: str) -> str:
    """One stack per stage; its CloudFormation name too."""
    return f"Trace-{stage}"


NETWORK = "Network"
DATA = "Data"
QUEUES = "Queues"
FUNCTIONS = "Functions"
MIGRATIONS = "Migrations"
API = "Api"
SERVICES = "Services"
OBSERVABILITY = "Observability"

# ---------------------------------------------------------------- data
DATABASE_NAME = "trace"
DATABASE_USER = "trace"
DATABASE_PORT = 5432
BUCKETS = tuple(platform.PLATFORM.buckets)

# ---------------------------------------------------------------- queues
# Physical queue names equal the Lite ones: the SQS driver resolves a queue by
# name (GetQueueUrl), and task rows carry that name. One stage per account and
# region therefore (see docs/decisions/0401-one-stack-per-stage.md).


def dlq_name(queue: str) -> str:
    return platform.PLATFORM.queues[queue].dlq


# ---------------------------------------------------------------- Lambda functions
# functions/<folder>/handler.py defines lambda_handler.
HANDLER = platform.types.HANDLER
FUNCTION_FOLDERS = tuple(platform.PLATFORM.functions)


def _declared(function: str) -> str:
    """A function the app refers to by name (its metric, ...); fails at import if the declaration lost it."""
    if function not in platform.PLATFORM.functions:
        raise KeyError(f"trace_core.platform declares no function {function!r}")
    return function


OUTBOX_DRAINER = _declared("outbox_drainer")  # emits OutboxOldestAgeSeconds, the outbox alarm's metric
SCHEMA_MIGRATIONS = "SchemaMigrations"  # the migration handler (cdk/handlers/migrations)


def function_id(folder: str) -> str:
    """The construct id and CloudFormation logical id of ``functions/<folder>``.

    ``dispatcher_api`` -> ``DispatcherApi``.

    Every Lambda function's logical id is its construct id, flat and stable, because
    ``sam local invoke -t cdk.out/Trace-<stage>.template.json DispatcherApi`` looks a
    function up by logical id: SAM reads a CDK construct id only from a path of the
    form ``Stack/Id/Resource``, and ours are nested (decision 1306).
    """
    return "".join(part.title() for part in folder.split("_"))


def service_name(component: str) -> str:
    """POWERTOOLS_SERVICE_NAME of a deployable: ``outbox-drainer`` (the name the handlers log and measure under)."""
    return component.replace("_", "-")


# ---------------------------------------------------------------- metrics (the alarms' contract)
# Emitted with Powertools Metrics (EMF) under POWERTOOLS_METRICS_NAMESPACE, with
# the default ``service`` dimension (POWERTOOLS_SERVICE_NAME) and no other. One
# stage per account, so the namespace carries no stage.
METRICS_NAMESPACE = "Trace"

METRIC_TASKS_COMPLETED = "TasksCompleted"  # count, by the process that completes a task
METRIC_TASKS_FAILED = "TasksFailed"  # count: failed or dead outcomes
METRIC_OUTBOX_OLDEST_AGE = "OutboxOldestAgeSeconds"  # gauge, by the outbox drainer per run
