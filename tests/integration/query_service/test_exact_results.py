"""Every integer and decimal DuckDB returns, exactly, through the real Query Service (gate, sandboxed
workers, Postgres audit, moto S3 export); infinite dates and timestamps answered; bodies announced and
never sent refused with 408 and audited.

Rules checked (docs/specs/query_service.md, "Result values"): in JSON an integer (or an integral decimal)
is a number when |v| <= 2**53 - 1 and a decimal string otherwise; a fractional decimal is a plain decimal
string. In Arrow and Parquet each column has a type that holds every value: HUGEINT and UHUGEINT stay
decimal128(38, 0) while every value has at most 38 digits, and become decimal256(39, 0) otherwise.
"""

from __future__ import annotations

import decimal
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from trace_core.query.service import app, deps

from tests.integration.query_service import helpers

SAFE = 2**53 - 1
# Every integer type DuckDB has, with its range.
INTEGERS: dict[str, tuple[int, int]] = {
    "TINYINT": (-(2**7), 2**7 - 1), "SMALLINT": (-(2**15), 2**15 - 1), "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1), "HUGEINT": (-(2**127), 2**127 - 1),
    "UTINYINT": (0, 2**8 - 1), "USMALLINT": (0, 2**16 - 1), "UINTEGER": (0, 2**32 - 1),
    "UBIGINT": (0, 2**64 - 1), "UHUGEINT": (0, 2**128 - 1),
}
# Decimals (width, scale) up to DuckDB's widest, DECIMAL(38, x).
DECIMALS: tuple[tuple[int, int], ...] = ((4, 1), (9, 2), (18, 4), (38, 0), (38, 10), (38, 38))
COLUMNS: tuple[str, ...] = (*INTEGERS, *(f"DECIMAL({w}, {s})" for w, s in DECIMALS))
PLAIN_DECIMAL = re.compile(r"-?\d+\.\d+")


def _bounds(column: str) -> tuple[int, int]:
    """The range of the column's integers (a decimal's unscaled integer)."""
    if column in INTEGERS:
        return INTEGERS[column]
    width = int(column[len("DECIMAL("):].split(",")[0])
    return -(10**width - 1), 10**width - 1


def _value(column: str, unscaled: int | None) -> int | decimal.Decimal | None:
    if unscaled is None or column in INTEGERS:
        return unscaled
    scale = int(column.rstrip(")").split(",")[1])
    return decimal.Decimal(unscaled).scaleb(-scale, context=decimal.Context(prec=100))  # exact, no rounding


def _literal(column: str, value: int | decimal.Decimal | None) -> str:
    if value is None:
        return f"CAST(NULL AS {column})"
    text = str(value) if isinstance(value, int) else format(value, "f")  # format(int, "f") goes through float
    return f"CAST('{text}' AS {column})"


def _sql(rows: list[list[Any]]) -> str:
    values = ", ".join("(" + ", ".join(_literal(c, v) for c, v in zip(COLUMNS, row, strict=True)) + ")"
                       for row in rows)
    names = ", ".join(f"c{i}" for i in range(len(COLUMNS)))
    return f"SELECT * FROM (VALUES {values}) AS t({names})"


def _json_ok(value: Any, got: Any) -> bool:
    """``got`` is ``value`` by the JSON rule: exact, a number only when an IEEE double holds it exactly."""
    if value is None:
        return got is None
    if isinstance(value, decimal.Decimal) and value != value.to_integral_value():
        return isinstance(got, str) and PLAIN_DECIMAL.fullmatch(got) is not None and decimal.Decimal(got) == value
    whole = int(value)
    if abs(whole) <= SAFE:
        return type(got) is int and got == whole
    return got == str(whole)


def _holds(kind: pa.DataType, column: str, values: list[Any]) -> bool:
    """``kind`` is a type whose declared range holds every value."""
    present = [v for v in values if v is not None]
    if pa.types.is_integer(kind):
        info = (-(2 ** (kind.bit_width - 1)), 2 ** (kind.bit_width - 1) - 1) if pa.types.is_signed_integer(kind) \
            else (0, 2**kind.bit_width - 1)
        return all(info[0] <= v <= info[1] for v in present)
    if pa.types.is_decimal(kind):
        with decimal.localcontext(prec=100):  # the default 28 digits would round the values compared
            limit = decimal.Decimal(10) ** (kind.precision - kind.scale)
            return all(abs(decimal.Decimal(v)) < limit and decimal.Decimal(v).as_tuple().exponent >= -kind.scale
                       for v in present)
    return False


def _rows_strategy() -> st.SearchStrategy[list[list[Any]]]:
    def column_values(column: str, n: int) -> st.SearchStrategy[list[Any]]:
        low, high = _bounds(column)
        unscaled = st.one_of(st.none(), st.integers(low, high), st.sampled_from((low, high, 0, -1, 1, SAFE, SAFE + 1))
                             .filter(lambda v: low <= v <= high))
        return st.lists(unscaled, min_size=n, max_size=n).map(lambda us: [_value(column, u) for u in us])

    def table(n: int) -> st.SearchStrategy[list[list[Any]]]:
        return st.tuples(*(column_values(c, n) for c in COLUMNS)).map(lambda cols: [list(r) for r in zip(*cols)])

    return st.integers(1, 6).flatmap(table)


def _extremes() -> list[list[Any]]:
    return [[_value(c, _bounds(c)[0]) for c in COLUMNS], [_value(c, _bounds(c)[1]) for c in COLUMNS],
            [None] * len(COLUMNS), [_value(c, 0) for c in COLUMNS]]


@pytest.fixture(scope="module")
def service(module_settings, sandbox_engine):
    made = deps.build_service(module_settings, sandbox=sandbox_engine)
    yield made


@pytest.fixture(scope="module")
def client(service) -> Iterator[TestClient]:
    with TestClient(app.create_app(service)) as made:
        yield made


@pytest.fixture(scope="module")
def token(module_settings, publish) -> str:
    return helpers.user_token(module_settings, helpers.grants_of(publish("blocks", 0, 10)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(rows=_extremes())
@given(rows=_rows_strategy())
def test_every_integer_and_decimal_type_comes_back_exactly(client, token, s3, rows):
    # GIVEN values over the full range of every integer and decimal type DuckDB has
    sql = _sql(rows)
    columns = list(zip(*rows))
    # WHEN they are asked for as JSON THEN each value follows the JSON rule exactly
    response = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql})
    assert response.status_code == 200, response.text
    for got_row, row in zip(response.json()["rows"], rows, strict=True):
        for column, value, got in zip(COLUMNS, row, got_row, strict=True):
            assert _json_ok(value, got), f"{column}: {value!r} came back as {got!r}"
    # AND as Arrow, and exported as Parquet, each column's type holds its values and the values are exact
    arrow = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql, "format": "arrow"})
    assert arrow.status_code == 200, arrow.text
    exported = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql, "export": True})
    assert exported.status_code == 200, exported.text
    link = exported.json()["export"]
    parquet = pq.read_table(pa.BufferReader(s3.get_object(Bucket=link["bucket"], Key=link["key"])["Body"].read()))
    for table in (pa.ipc.open_stream(arrow.content).read_all(), parquet):
        for index, (column, values) in enumerate(zip(COLUMNS, columns, strict=True)):
            got = table.column(index)
            assert _holds(got.type, column, list(values)), f"{column}: {got.type} does not hold {values}"
            assert got.to_pylist() == list(values), column


def test_a_uhugeint_at_the_top_of_its_range_is_not_minus_one(client, token):
    # GIVEN the largest UHUGEINT, 2**128 - 1 (it used to come back as -1)
    sql = "SELECT CAST('340282366920938463463374607431768211455' AS UHUGEINT) AS v"
    # WHEN asked for as JSON and as Arrow THEN it is exact in both
    assert client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql}).json()["rows"] == [
        [str(2**128 - 1)]]
    arrow = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql, "format": "arrow"})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.schema.field("v").type == pa.decimal256(39, 0)
    assert table.column("v").to_pylist() == [2**128 - 1]


def test_nested_128_bit_integers_are_exact(client, token):
    # GIVEN UHUGEINTs and HUGEINTs inside a list, a struct and a map
    big, low = 2**128 - 1, -(2**127)
    sql = (f"SELECT [CAST('{big}' AS UHUGEINT), NULL] AS l, {{'x': CAST('{low}' AS HUGEINT)}} AS s, "
           f"MAP([CAST('{big}' AS UHUGEINT)], [CAST('1' AS HUGEINT)]) AS m")
    # WHEN asked for as JSON THEN every nested value is exact
    response = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql})
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[[str(big), None], {"x": str(low)}, [[str(big), 1]]]]


@pytest.mark.parametrize(("expression", "expected"), [
    ("CAST('infinity' AS DATE)", "infinity"),
    ("CAST('-infinity' AS DATE)", "-infinity"),
    ("CAST('infinity' AS TIMESTAMP)", "infinity"),
    ("CAST('-infinity' AS TIMESTAMPTZ)", "-infinity"),
    ("CAST('infinity' AS TIMESTAMP_NS)", "infinity"),
    ("CAST('-infinity' AS TIMESTAMP_MS)", "-infinity"),
    ("CAST('infinity' AS TIMESTAMP_S)", "infinity"),
    ("CAST('10000-01-01' AS DATE)", "+10000-01-01"),
    ("CAST('2020-01-01 00:00:00.000000001' AS TIMESTAMP_NS)", "2020-01-01T00:00:00.000000001"),
    ("CAST('2026-11-23 10:00:00.25' AS TIMESTAMP)", "2026-11-23T10:00:00.250000"),
])
def test_infinite_and_far_dates_and_timestamps_are_answered(client, token, conn, expression, expected):
    # GIVEN a date or timestamp Python's datetime cannot hold (it used to be a 500)
    sql = f"SELECT {expression} AS v UNION ALL SELECT NULL"
    # WHEN asked for as JSON THEN the answer names it, and the request is audited as allowed
    response = client.post("/v1/query", headers=helpers.bearer(token), json={"sql": sql})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == [[expected], [None]]
    assert helpers.audit_row(conn, body["query_id"])["status_code"] == 200


@pytest.fixture
def served_app(service) -> Iterator[str]:
    """The app on a real socket under uvicorn (as in production), with a 1 s body timeout."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app.create_app(service, body_timeout_s=1.0), http="h11",
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive()


def _raw_post(address: str, head: bytes, timeout: float) -> bytes:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as raw:
        raw.sendall(head)
        received = b""
        while chunk := raw.recv(65536):  # the server answers, then closes the connection
            received += chunk
        return received


def test_a_body_announced_and_never_sent_is_408_and_audited(served_app, token, conn):
    # GIVEN a request announcing 100 bytes of body and sending 10
    head = (f"POST /v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sql\": \"s").encode()
    # WHEN the client then waits THEN the service answers 408 after its body timeout and closes
    started = time.monotonic()
    answer = _raw_post(served_app, head, timeout=15)
    assert time.monotonic() - started < 10
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"connection: close" in rest.lower()
    payload = rest.partition(b"\r\n\r\n")[2]
    error = json.loads(payload)["error"]
    assert error["code"] == "body_timeout" and "10 bytes of the 100 bytes announced" in error["message"]
    # AND the refusal is audited with the token's principal
    row = helpers.audit_row(conn, error["query_id"])
    assert (row["status_code"], row["decision"], row["principal"]) == (408, "denied", "user:ada@example.com")
