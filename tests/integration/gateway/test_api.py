"""The HTTP surface through aiohttp's test client on a real hub (real SQLite, real broker):
shapes, status codes for bad input, the admin token, and the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import HUB, create_app
from gateway.settings import HubSettings
from ledger.keys import generate_key, public_key_b64, write_key_pair
from tests.support.broker import Mosquitto

Client = TestClient[web.Request, web.Application]
TOKEN = "s3cret"


def settings_for(tmp_path: Path, broker: Mosquitto, **extra: Any) -> HubSettings:
    if not (tmp_path / "hub.key").exists():
        write_key_pair(tmp_path / "hub.key")
    values: dict[str, Any] = {
        "db_path": tmp_path / "ledger.db",
        "signing_key": tmp_path / "hub.key",
        "mqtt_url": broker.url,
        "mqtt_client_id": f"api-{tmp_path.name}"[:60],
        "admin_token": TOKEN,
        **extra,
    }
    return HubSettings(**values)


@pytest.fixture
async def client(
    tmp_path: Path,
    hub_broker: Mosquitto,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> Client:
    return await aiohttp_client(create_app(settings_for(tmp_path, hub_broker)))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def add_source(client: Client) -> None:
    r = await client.post("/api/v1/admin/registry/orgs", json={"org": "city"}, headers=AUTH)
    assert r.status == 201
    r = await client.post(
        "/api/v1/admin/registry/sources",
        json={
            "pilot": "p",
            "source": "s",
            "org": "city",
            "types": ["t"],
            "public_key": public_key_b64(generate_key().public_key()),
        },
        headers=AUTH,
    )
    assert r.status == 201, await r.text()


async def test_openapi_matches_the_routes(client: Client) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    assert documented == served
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', str(spec).replace("'", '"')))
    assert refs <= set(spec["components"]["schemas"])


async def test_health_and_readiness(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    for _ in range(100):
        r = await client.get("/readyz")
        if r.status == 200:
            break
        await __import__("asyncio").sleep(0.05)
    body = await r.json()
    assert r.status == 200 and body["status"] == "ready"
    metrics = await (await client.get("/metrics")).text()
    assert "swiftchain_log_size" in metrics and "swiftchain_mqtt_connected 1.0" in metrics


async def test_checkpoint_and_key(client: Client) -> None:
    from ledger.checkpoint import NoteVerifier, verify_checkpoint

    key = (await (await client.get("/api/v1/ledger/key")).text()).strip()
    note = await (await client.get("/api/v1/ledger/checkpoint")).text()
    cp = verify_checkpoint(note, NoteVerifier.parse(key))
    assert cp.size == 0 and cp.origin == "swiftchain.local/ledger"
    hub = client.app[HUB]
    assert hub.ledger.reader.meta("log_key") == key
    # The log's metadata: its suite is the default one, SHA-256 and Ed25519.
    info = await (await client.get("/api/v1/ledger")).json()
    assert info == {
        "origin": "swiftchain.local/ledger",
        "suite": "ed25519-sha256",
        "log_key": key,
        "size": 0,
        "checkpoint_size": 0,
    }
    await add_source(client)
    grown = await (await client.get("/api/v1/ledger")).json()
    assert grown["size"] == 3 and grown["suite"] == "ed25519-sha256"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/ledger/entries?start=-1", 400, "bad_parameter"),
        ("/api/v1/ledger/entries?start=abc", 400, "bad_parameter"),
        ("/api/v1/ledger/entries?start=99", 400, "bad_parameter"),
        ("/api/v1/ledger/entries?start=0&end=5000", 400, "bad_parameter"),
        ("/api/v1/ledger/entries?start=2&end=1", 400, "bad_parameter"),
        ("/api/v1/ledger/entries?start=99999999999999999999", 400, "bad_parameter"),
        ("/api/v1/ledger/proof/inclusion", 400, "bad_parameter"),
        ("/api/v1/ledger/proof/inclusion?index=0&size=0", 400, "bad_parameter"),
        ("/api/v1/ledger/proof/inclusion?index=5&size=3", 400, "bad_parameter"),
        ("/api/v1/ledger/proof/inclusion?index=0&size=100", 400, "bad_parameter"),
        ("/api/v1/ledger/proof/consistency?first=0&second=1", 400, "bad_parameter"),
        ("/api/v1/ledger/proof/consistency?first=2&second=1", 400, "bad_parameter"),
        ("/api/v1/ledger/proof/consistency?first=1&second=x", 400, "bad_parameter"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ],
)
async def test_bad_parameters_are_json_errors(
    client: Client, path: str, status: int, code: str
) -> None:
    await add_source(client)  # a log of 3 entries
    r = await client.get(path)
    assert r.status == status
    body = await r.json()
    assert body["error"] == code and body["detail"]
    assert "Traceback" not in body["detail"]


async def test_wrong_method_is_json_405(client: Client) -> None:
    r = await client.post("/api/v1/ledger/checkpoint")
    assert r.status == 405
    assert (await r.json())["error"] == "method_not_allowed"


async def test_entries_and_proofs(client: Client) -> None:
    await add_source(client)
    page = await (await client.get("/api/v1/ledger/entries?start=0&end=10")).json()
    assert page["size"] == 3
    assert [e["kind"] for e in page["entries"]] == ["registry"] * 3
    assert all(e["sig"] is None for e in page["entries"])
    proof = await (await client.get("/api/v1/ledger/proof/consistency?first=1&second=3")).json()
    assert proof["first"] == 1 and len(proof["proof"]) >= 1


async def test_admin_needs_the_token(client: Client) -> None:
    r = await client.post("/api/v1/admin/registry/orgs", json={"org": "x"})
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    r = await client.post(
        "/api/v1/admin/registry/orgs", json={"org": "x"}, headers={"Authorization": "Bearer nope"}
    )
    assert r.status == 401
    r = await client.post("/api/v1/admin/registry/orgs", data=b"{nope", headers=AUTH)
    assert r.status == 400 and (await r.json())["error"] == "malformed_json"
    r = await client.post("/api/v1/admin/registry/orgs", json={"org": "Not A Slug"}, headers=AUTH)
    assert r.status == 400 and (await r.json())["error"] == "bad_parameter"
    r = await client.post(
        "/api/v1/admin/registry/keys/revoke", json={"key_id": "nope"}, headers=AUTH
    )
    assert r.status == 404 and (await r.json())["error"] == "unknown_key"
    await add_source(client)
    r = await client.post("/api/v1/admin/registry/orgs", json={"org": "city"}, headers=AUTH)
    assert r.status == 409 and (await r.json())["error"] == "org_exists"


async def test_admin_off_without_a_token(
    tmp_path: Path,
    hub_broker: Mosquitto,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await aiohttp_client(create_app(settings_for(tmp_path, hub_broker, admin_token=None)))
    r = await client.post("/api/v1/admin/registry/orgs", json={"org": "x"}, headers=AUTH)
    assert r.status == 403 and (await r.json())["error"] == "admin_disabled"


async def test_public_registry(client: Client) -> None:
    await add_source(client)
    orgs = await (await client.get("/api/v1/registry/orgs")).json()
    sources = await (await client.get("/api/v1/registry/sources?pilot=p")).json()
    keys = await (await client.get("/api/v1/registry/keys")).json()
    assert [o["org"] for o in orgs["orgs"]] == ["city"]
    assert sources["sources"][0]["types"] == ["t"] and sources["sources"][0]["active"]
    assert keys["keys"][0]["valid_from"] and len(keys["keys"][0]["public_key"]) == 43
