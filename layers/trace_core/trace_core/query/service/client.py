"""A small HTTP client of the Query Service, for the CLI, workers (task tokens) and tests.

Results come back as Arrow tables (exact types); an exported result is
downloaded from its presigned link. Errors raise QueryClientError carrying the
service's status, code and query id.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from trace_core.query.service import errors, wire


@dataclasses.dataclass(frozen=True)
class Answer:
    table: pa.Table
    query_id: str
    truncated: bool
    export: dict[str, Any] | None = None


class QueryClient:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 120.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def query(self, sql: str, *, max_rows: int | None = None, export: bool = False,
              endpoint: str = "/v1/query") -> Answer:
        """Run ``sql``; with ``export`` the result is written to the results bucket and fetched from its link."""
        body: dict[str, Any] = {"sql": sql, "format": "arrow", "export": export}
        if max_rows is not None:
            body["max_rows"] = max_rows
        try:
            response = self._http.post(endpoint, json=body)
        except httpx.HTTPError as exc:
            raise errors.QueryClientError(f"the Query Service at {self._http.base_url} did not answer: {exc}",
                                          status=0, code="unreachable") from exc
        if response.status_code != 200:
            raise _error(response)
        if response.headers.get("content-type", "").startswith(wire.ARROW_MEDIA_TYPE):
            table = pa.ipc.open_stream(response.content).read_all()
            return Answer(table, response.headers.get("x-trace-query-id", ""),
                          response.headers.get("x-trace-truncated") == "true")
        payload = response.json()
        link = payload["export"]
        download = httpx.get(link["url"], timeout=self._http.timeout)
        if download.status_code != 200:
            raise errors.QueryClientError(f"downloading the exported result failed ({download.status_code})",
                                          status=download.status_code, code="export_download")
        return Answer(pq.read_table(pa.BufferReader(download.content)), payload["query_id"], payload["truncated"],
                      link)


def _error(response: httpx.Response) -> errors.QueryClientError:
    try:
        detail = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        detail = {"code": "http_error", "message": response.text[:500]}
    return errors.QueryClientError(
        f"{detail.get('code')}: {detail.get('message')}", status=response.status_code, code=detail.get("code"),
        query_id=detail.get("query_id"),
    )
