from tests.integration.datasets.fixtures import conn, make_attempt, make_s3_store, s3_client  # noqa: F401
