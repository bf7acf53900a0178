"""Ledger errors leave the hub by what they mean: the storage's trouble is a 503 with
Retry-After, a range outside the log the caller's 400, anything else ours (500); the same
for JSON routes and, as an OperationOutcome, for ``/fhir/`` routes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from gateway.errors import STORAGE_RETRY_AFTER_S, error_middleware
from gateway.fhir.outcome import fhir_errors
from ledger.errors import LedgerError, ProofError, RangeError, StorageError, StoreError

RAISED: dict[str, LedgerError] = {
    "full": StorageError(
        "ledger postgresql://postgres@127.0.0.1:5432/city: could not extend file"
        ' "pg_tblspc/16384/PG_15/16390": No space left on device'
    ),
    "range": RangeError("index 9 is outside a tree of size 3"),
    "corrupt": StoreError("ledger.db is not a usable ledger: file is not a database"),
    "proof": ProofError("the proof does not verify"),
}


def _app() -> web.Application:
    async def fail(request: web.Request) -> web.Response:
        raise RAISED[request.match_info["what"]]

    app = web.Application(middlewares=[error_middleware, fhir_errors])
    app.router.add_get("/api/v1/fail/{what}", fail)
    app.router.add_get("/fhir/fail/{what}", fail)
    return app


@pytest.mark.parametrize(
    ("what", "status", "code"),
    [
        ("full", 503, "storage_unavailable"),
        ("range", 400, "out_of_range"),
        ("corrupt", 500, "internal"),
        ("proof", 500, "internal"),
    ],
)
async def test_ledger_errors_as_json(
    aiohttp_client: Any, what: str, status: int, code: str
) -> None:
    client = await aiohttp_client(_app())
    resp = await client.get(f"/api/v1/fail/{what}")
    body = await resp.json()
    assert (resp.status, body["error"]) == (status, code)
    if status == 503:
        assert resp.headers["Retry-After"] == str(STORAGE_RETRY_AFTER_S)
        assert "storage is full" in body["detail"]
    else:
        assert "Retry-After" not in resp.headers
    if status >= 500:  # nothing of the inside leaks: no file, no database, no user
        assert "ledger.db" not in body["detail"] and "postgres" not in body["detail"]


@pytest.mark.parametrize(
    ("what", "status", "issue_type", "code"),
    [
        ("full", 503, "transient", "storage_unavailable"),
        ("range", 400, "invalid", "out_of_range"),
        ("corrupt", 500, "exception", "internal"),
    ],
)
async def test_ledger_errors_as_operation_outcome(
    aiohttp_client: Any, what: str, status: int, issue_type: str, code: str
) -> None:
    client = await aiohttp_client(_app())
    resp = await client.get(f"/fhir/fail/{what}")
    assert resp.status == status
    assert resp.content_type == "application/fhir+json"
    (issue,) = (await resp.json(content_type=None))["issue"]
    assert issue["code"] == issue_type
    assert issue["details"]["coding"][0]["code"] == code
    assert ("Retry-After" in resp.headers) == (status == 503)
