"""Every name the app shares between constructs, the deployables and the docs.

Construct IDs, the physical names that code relies on (queue names), the
environment contract of the deployables, and the metrics the alarms watch.
Changing a construct ID here replaces the resource on the next deploy.
"""

from __future__ import annotations

from trace_core.lite import provision

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
BUCKETS = ("datasets", "results", "scratch")

# ---------------------------------------------------------------- queues
# Physical queue names equal the Lite ones: the SQS driver resolves a queue by
# name (GetQueueUrl), and task rows carry that name. One stage per account and
# region therefore (see docs/decisions/0401-one-stack-per-stage.md).
QUEUE_MAX_RECEIVES: dict[str, int] = dict(provision.QUEUES)
TASK_QUEUE = "trace-tasks"
SINK_QUEUE = "trace-sink"  # the dataset-buffer queue the sink Lambda drains
DELIVERY_QUEUE = "trace-deliveries"


def dlq_name(queue: str) -> str:
    return f"{queue}-dlq"


# ---------------------------------------------------------------- Lambda functions
# functions/<folder>/handler.py defines lambda_handler.
HANDLER = "handler.lambda_handler"
DISPATCHER_API = "dispatcher_api"
OUTBOX_DRAINER = "outbox_drainer"
LEASE_REAPER = "lease_reaper"
SINK = "sink"
CHAIN_SYNC_PLANNER = "chain_sync_planner"
FUNCTION_FOLDERS = (DISPATCHER_API, OUTBOX_DRAINER, LEASE_REAPER, SINK, CHAIN_SYNC_PLANNER)
SCHEMA_MIGRATIONS = "SchemaMigrations"  # the migration handler (cdk/handlers/migrations)


def function_id(folder: str) -> str:
    """The construct id and CloudFormation logical id of ``functions/<folder>``: ``dispatcher_api`` -> ``DispatcherApi``.

    Every Lambda function's logical id is its construct id, flat and stable, because
    ``sam local invoke -t cdk.out/Trace-<stage>.template.json DispatcherApi`` looks a
    function up by logical id: SAM reads a CDK construct id only from a path of the
    form ``Stack/Id/Resource``, and ours are nested (decision 1306).
    """
    return "".join(part.title() for part in folder.split("_"))

# ---------------------------------------------------------------- Fargate services
QUERY = "query"
WORKER = "worker"
DELIVERY = "delivery"
QUERY_COMMAND = ["python", "-m", "trace_core.query.service"]
WORKER_COMMAND = ["python", "-m", "trace_core.cli", "worker"]


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
