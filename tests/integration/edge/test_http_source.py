"""The HTTP source over real HTTP: 202 once durable, 4xx OperationOutcomes for bad input,
and the outbox untouched by anything refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.sources.http import create_app
from tests.support.edge import observation, outbox_depth, running_intake, stored_records

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Any]:
    async with running_intake(tmp_path) as intake:
        yield await aiohttp_client(create_app(intake, max_body_bytes=64 * 1024))


async def test_a_resource_is_accepted_once_stored(client: Any, tmp_path: Path) -> None:
    resp = await client.post(
        "/fhir/Observation", json=observation(), headers={**FHIR, "X-Consent": "consent-1"}
    )
    assert resp.status == 202
    outcome = await resp.json(content_type=None)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"
    (record,) = stored_records(tmp_path / "outbox.db")
    assert record["header"]["id"] == resp.headers["X-Record-Ids"]
    # Wire v2: the consent is in the body's person opening; the header holds its commitment.
    assert record["body"]["person"]["consent"] == "consent-1"
    assert "consent" not in record["header"] and record["header"]["person"] is not None
    assert "MRN-4711" not in json.dumps(record)


async def test_a_bundle_becomes_one_record_per_entry(client: Any, tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": observation(f"MRN-{i}")} for i in range(5)],
    }
    resp = await client.post("/fhir?consent=consent-2", data=json.dumps(bundle), headers=FHIR)
    assert resp.status == 202
    assert len(resp.headers["X-Record-Ids"].split(",")) == 5
    assert [r["header"]["seq"] for r in stored_records(tmp_path / "outbox.db")] == [1, 2, 3, 4, 5]


def _invalid_bundle() -> dict[str, Any]:
    bad = observation()
    del bad["status"]
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": observation()}, {"resource": bad}],
    }


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "code", "text"),
    [
        ("/fhir", b'{"resourceType": "Observation",', FHIR, 400, "structure", "malformed_json"),
        ("/fhir", json.dumps(_invalid_bundle()).encode(), FHIR, 422, "invalid", "Bundle.entry[1]"),
        (
            "/fhir",
            json.dumps({"resourceType": "Spaceship"}).encode(),
            FHIR,
            422,
            "not-supported",
            "unknown_type",
        ),
        (
            "/fhir/Patient",
            json.dumps(observation()).encode(),
            FHIR,
            400,
            "invalid",
            "carries a Observation",
        ),
        (
            "/fhir",
            json.dumps(observation()).encode(),
            {"Content-Type": "text/plain"},
            415,
            "not-supported",
            "text/plain",
        ),
        ("/fhir", b"x" * (70 * 1024), FHIR, 413, "too-long", "oversize"),
        ("/fhir", json.dumps([observation()]).encode(), FHIR, 400, "invalid", "one FHIR resource"),
    ],
)
async def test_bad_input_gets_an_operation_outcome_and_stores_nothing(
    client: Any,
    tmp_path: Path,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
    text: str,
) -> None:
    resp = await client.post(path, data=body, headers={**headers, "X-Consent": "c-1"})
    assert resp.status == status
    assert resp.content_type == "application/fhir+json"
    outcome = await resp.json(content_type=None)
    issue = outcome["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", code)
    assert text in issue["diagnostics"] + " ".join(issue.get("expression", []))
    assert outbox_depth(tmp_path / "outbox.db") == 0


async def test_personal_data_without_consent_is_refused(client: Any, tmp_path: Path) -> None:
    resp = await client.post("/fhir", json=observation(), headers=FHIR)
    assert resp.status == 422
    assert "consent_required" in (await resp.text())
    assert outbox_depth(tmp_path / "outbox.db") == 0


async def test_unknown_paths_and_methods_are_operation_outcomes(client: Any) -> None:
    for resp in (await client.get("/nope"), await client.get("/fhir")):
        assert resp.status in (404, 405)
        assert (await resp.json(content_type=None))["resourceType"] == "OperationOutcome"
