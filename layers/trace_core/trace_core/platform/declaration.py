"""The platform, declared once: what runs, on what trigger, reading which settings.

The CDK app (``cdk/trace_cdk``), the Lite host (``trace_core.lite.host``,
``trace_core.lite.provision``) and the worker entry point read this; nothing
else names a queue, a schedule or a function. To add a Lambda function, add a
:class:`~trace_core.platform.types.Function` below and write
``functions/<name>/handler.py``: CDK deploys it with its trigger and
environment, Lite hosts it, and ``tests/infra/test_platform_agreement.py``
checks both.
"""

from __future__ import annotations

from trace_core.platform import types as t

# ---------------------------------------------------------------- queues
# Physical names on AWS and under Lite alike: task rows carry the queue's name, and the SQS
# driver resolves it by name (GetQueueUrl).
TASK_QUEUE = "trace-tasks"  # wake-ups of the chain workers: {task_id, attempt} pointers
SINK_QUEUE = "trace-sink"  # dataset-buffer pointers the sink function applies
DELIVERY_QUEUE = "trace-deliveries"  # wake-ups of the delivery workers (webhooks)

QUEUES = (
    t.Queue(TASK_QUEUE, max_receives=5),
    t.Queue(SINK_QUEUE, max_receives=5),
    t.Queue(DELIVERY_QUEUE, max_receives=5),
)

# ---------------------------------------------------------------- buckets
BUCKETS = (
    t.Bucket("datasets", setting="datasets_bucket"),  # committed and staged Parquet, manifests
    t.Bucket("results", setting="results_bucket"),  # exported query results
    t.Bucket("scratch", setting="scratch_bucket"),  # workers' temporary objects
    t.Bucket("bundles", setting="bundles_bucket"),  # signed user-function archives, by content address
)

# ---------------------------------------------------------------- settings (names of Settings fields)
# Every deployable reaches AWS APIs (profile, endpoint, region) and Postgres. A Lambda reads the
# database password from the secret named by database_secret_arn; a container gets PGPASSWORD.
AWS = ("profile", "aws_endpoint_url", "aws_region")
DATABASE = ("database_url", "database_secret_arn", "db_pool_max")
TOKENS = ("home", "token_issuer", "token_keys", "token_keys_secret")
FUNCTION_SETTINGS = (*AWS, *DATABASE)

# ---------------------------------------------------------------- Lambda functions
FUNCTIONS = (
    # The HTTP API gives up after 30 s: answer before it does.
    t.Function(
        "dispatcher_api", "Dispatcher API: tasks, leases, heartbeats, completions", 29,
        t.Http((t.HttpRoute("ANY", "/{proxy+}", auth="iam"),)), FUNCTION_SETTINGS,
    ),
    # Scheduled ones stay below the one-minute period, so runs rarely overlap (overlap is safe: SKIP LOCKED).
    t.Function(
        "outbox_drainer", "Publishes pending outbox rows to SQS", 55,
        t.Schedule(wake_on_outbox=True), (*FUNCTION_SETTINGS, "queue_driver"),
        publishes=(TASK_QUEUE, SINK_QUEUE, DELIVERY_QUEUE),
    ),
    t.Function("lease_reaper", "Retries or buries tasks whose lease expired", 55, t.Schedule(), FUNCTION_SETTINGS),
    # Polls follow_head jobs' chain heads: the RPC egress path of the chain workers. Under Lite at most
    # every 5 s (each pass calls every job's RPC).
    t.Function(
        "chain_sync_planner", "Chain sync planner: follow_head polling, repair, reschedule", 55,
        t.Schedule(local_floor_seconds=5.0), FUNCTION_SETTINGS, rpc_egress=True,
    ),
    t.Function(
        "sink", "Writes dataset-buffer messages idempotently; reports failed items", 60,
        t.QueueSource(SINK_QUEUE, batch_size=10, max_batching_window_seconds=5, max_concurrency=5),
        FUNCTION_SETTINGS,
    ),
)

# ---------------------------------------------------------------- worker pools and services
CHAIN_POOL = "chain"
DELIVERY_POOL = "delivery"
WORKER_POOLS = (
    t.WorkerPool(CHAIN_POOL, TASK_QUEUE, operators=("cryo_ingest", "noop")),
    # The alerting issue adds the delivery operator; noop keeps the pool's wiring exercised meanwhile.
    t.WorkerPool(DELIVERY_POOL, DELIVERY_QUEUE, operators=("noop",)),
)

WORKER_COMMAND = ("python", "-m", "trace_core.worker")
WORKER_SETTINGS = (
    *AWS, *DATABASE, *TOKENS,
    "log_level", "queue_driver", "worker_pool", "datasets_bucket", "scratch_bucket", "chain_id",
    "emit_metrics", "operator_modules", "worker_concurrency", "lease_seconds", "worker_allocator",
    "worker_cryo_threads",
)
QUERY_SETTINGS = (
    *AWS, *DATABASE, *TOKENS,
    "log_level", "datasets_bucket", "results_bucket", "query_host", "query_port", "query_timeout_s",
    "query_memory_mb", "query_inline_max_bytes", "query_max_rows", "query_export_max_bytes", "query_workers",
    "query_max_running_per_principal", "query_max_queued_per_principal", "query_queue_wait_s",
    "query_breaker_crashes", "query_breaker_window_s", "query_breaker_cooldown_s",
)
SERVICES = (
    t.Service(
        "query", "Query Service: token -> SQL gate -> sandboxed DuckDB", ("python", "-m", "trace_core.query.service"),
        image="query", settings=QUERY_SETTINGS,
        # The Query Service verifies the Bearer token (user JWT or capability token) itself.
        routes=(
            t.HttpRoute("POST", "/v1/query", auth="none"),
            t.HttpRoute("ANY", "/v1/query/{proxy+}", auth="none"),
            t.HttpRoute("POST", "/v1/task-query", auth="none"),
        ),
    ),
    t.Service(
        "worker", "Chain workers: cryo_ingest over JSON-RPC", WORKER_COMMAND, image="worker",
        settings=WORKER_SETTINGS, pool=CHAIN_POOL, egress="rpc", buckets=("datasets", "scratch"),
    ),
    t.Service(
        "delivery", "Delivery workers: webhooks", WORKER_COMMAND, image="worker",
        settings=WORKER_SETTINGS, pool=DELIVERY_POOL, egress="delivery",
    ),
)

PLATFORM = t.Platform.of(
    functions=FUNCTIONS, services=SERVICES, worker_pools=WORKER_POOLS, queues=QUEUES, buckets=BUCKETS
)
