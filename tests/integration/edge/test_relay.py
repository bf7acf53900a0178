"""A relay agent over its real HTTP intake and outbox: a device's sealed reading comes in,
an outer record under the relay's name goes into the outbox with the device's header in
body.origin; the same reading again is stored once (also after a restart); every kind of
bad envelope is refused with its reason and leaves the outbox as it was. And a device
seals and posts with `swiftchain edge seal`."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from edge.relay import Relay
from edge.sources.http import create_app
from ledger.envelope import check_commitment, check_origin, check_signature, parse_record
from ledger.keys import write_key_pair
from ledger.suite import SUITES, Suite
from tests.support.devices import CONSENT, RELAY_SOURCE, SUBJECT, Device, reading, relay_of
from tests.support.edge import SWIFTCHAIN, outbox_depth, running_intake, stored_records

JSON = {"Content-Type": "application/json"}
DEVICE = Device("hd-0a1b2c3d4e")
OTHER = Device("hd-5f6a7b8c9d")
RELAY = relay_of(DEVICE, OTHER)


async def _client(aiohttp_client: Any, intake: Any) -> Any:
    return await aiohttp_client(create_app(intake, max_body_bytes=64 * 1024))


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Any]:
    async with running_intake(tmp_path, relay=RELAY) as intake:
        yield await _client(aiohttp_client, intake)


async def _diagnostics(resp: Any) -> str:
    outcome = await resp.json(content_type=None)
    return " ".join(i["diagnostics"] for i in outcome["issue"])


async def test_a_device_reading_is_relayed_under_the_relays_name(
    client: Any, tmp_path: Path
) -> None:
    envelope = DEVICE.envelope()
    resp = await client.post("/relay", data=json.dumps(envelope), headers=JSON)
    assert resp.status == 202, await resp.text()
    (outer,) = stored_records(tmp_path / "outbox.db")
    assert resp.headers["X-Record-Ids"] == envelope["header"]["id"] == outer["header"]["id"]
    assert outer["header"]["source"] == RELAY_SOURCE and outer["header"]["seq"] == 1
    assert outer["header"]["person"] == envelope["header"]["person"]
    assert outer["header"]["commitment"] == envelope["header"]["commitment"]
    assert outer["body"]["person"] == {**envelope["body"]["person"]}
    assert outer["body"]["person"]["subject"] == SUBJECT
    assert outer["body"]["person"]["consent"] == CONSENT
    assert outer["body"]["origin"] == {"header": envelope["header"], "sig": envelope["sig"]}
    record = parse_record(json.dumps(outer).encode())
    check_origin(record)
    assert record.body.origin is not None
    check_signature(
        record.body.origin.header.canonical(), record.body.origin.sig, DEVICE.key.public_key()
    )
    # The public leaf names neither the device nor the person.
    leaf = record.header.canonical().decode()
    assert DEVICE.source not in leaf and SUBJECT not in leaf and CONSENT not in leaf


async def test_the_same_reading_twice_is_stored_once(client: Any, tmp_path: Path) -> None:
    first, second = DEVICE.envelope(), OTHER.envelope()
    assert (await client.post("/relay", json=first)).status == 202
    again = await client.post("/relay", json=first)
    assert again.status == 200
    assert again.headers["X-Record-Ids"] == first["header"]["id"]
    assert "relayed before" in await _diagnostics(again)
    # A list with one reading seen before and one new: the new one alone is stored.
    both = await client.post("/relay", json=[first, second])
    assert both.status == 202
    assert both.headers["X-Record-Ids"] == f"{first['header']['id']},{second['header']['id']}"
    assert [r["header"]["id"] for r in stored_records(tmp_path / "outbox.db")] == [
        first["header"]["id"],
        second["header"]["id"],
    ]
    # The same reading twice in one list is one record too.
    third = DEVICE.envelope()
    twice = await client.post("/relay", json=[third, third])
    assert twice.status == 202
    assert [r["header"]["seq"] for r in stored_records(tmp_path / "outbox.db")] == [1, 2, 3]


async def test_a_reading_relayed_before_a_restart_is_not_stored_again(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    envelope = DEVICE.envelope()
    async with running_intake(tmp_path, relay=RELAY) as intake:
        client = await _client(aiohttp_client, intake)
        assert (await client.post("/relay", json=envelope)).status == 202
        await client.close()
    async with running_intake(tmp_path, relay=RELAY) as intake:
        client = await _client(aiohttp_client, intake)
        resp = await client.post("/relay", json=envelope)
        assert resp.status == 200
        assert "seq 1" in await _diagnostics(resp)
        await client.close()
    assert outbox_depth(tmp_path / "outbox.db") == 1


async def test_another_reading_under_a_relayed_id_is_a_conflict(
    client: Any, tmp_path: Path
) -> None:
    first = DEVICE.envelope()
    assert (await client.post("/relay", json=first)).status == 202
    other = DEVICE.envelope(reading() | {"id": "obs-2"}, record_id=first["header"]["id"])
    resp = await client.post("/relay", json=other)
    assert resp.status == 409
    assert "relay_conflict" in await _diagnostics(resp)
    assert outbox_depth(tmp_path / "outbox.db") == 1


def _tampered_payload(e: dict[str, Any]) -> Any:
    e["body"]["payload"]["valueQuantity"]["value"] = 190
    return e


def _forged(e: dict[str, Any]) -> Any:
    e["sig"] = Device(DEVICE.source).envelope()["sig"]
    return e


BAD: list[tuple[str, Callable[[dict[str, Any]], Any], int, str]] = [
    ("unknown device", lambda e: Device("hd-9999999999").envelope(), 403, "unknown_device"),
    (
        "device's id, another key",
        lambda e: Device(DEVICE.source).envelope(),
        403,
        "wrong_device_key",
    ),
    ("bad signature", _forged, 403, "bad_signature"),
    ("wrong pilot", lambda e: DEVICE.envelope(pilot="hospital-b"), 422, "wrong_pilot"),
    ("payload tampered", _tampered_payload, 422, "commitment_mismatch"),
    ("v1", lambda e: DEVICE.envelope(version=1), 422, "unsupported_version"),
    (
        "not a type of the relay",
        lambda e: DEVICE.envelope(type="city.spaceport"),
        422,
        "unknown_type",
    ),
    ("not an envelope", lambda e: {"type": "x", "payload": {}}, 400, "invalid_envelope"),
    ("broken envelope", lambda e: {**e, "sig": 7}, 400, "invalid_envelope"),
]


@pytest.mark.parametrize(
    ("tamper", "status", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
async def test_each_bad_envelope_is_refused_with_its_reason(
    client: Any,
    tmp_path: Path,
    tamper: Callable[[dict[str, Any]], Any],
    status: int,
    reason: str,
) -> None:
    value = tamper(copy.deepcopy(DEVICE.envelope()))
    resp = await client.post("/relay", data=json.dumps(value), headers=JSON)
    assert resp.status == status
    assert resp.content_type == "application/fhir+json"
    outcome = await resp.json(content_type=None)
    assert outcome["issue"][0]["severity"] == "error"
    assert outcome["issue"][0]["diagnostics"].startswith(f"{reason}:")
    assert outbox_depth(tmp_path / "outbox.db") == 0


async def test_an_agent_without_devices_refuses_envelopes(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    async with running_intake(tmp_path) as intake:
        client = await _client(aiohttp_client, intake)
        resp = await client.post("/relay", json=DEVICE.envelope())
        assert resp.status == 403
        assert "relay_disabled" in await _diagnostics(resp)
        await client.close()


async def test_a_device_seals_and_posts_with_the_cli(
    tmp_path: Path, aiohttp_client: Any, suite: Suite
) -> None:
    key = write_key_pair(tmp_path / "hd-1.key", suite=suite)
    relay = Relay("hospital-a", RELAY_SOURCE, {"hd-1": key.public_key()}, suite)
    payload = tmp_path / "bp.json"
    payload.write_text(json.dumps(reading()))
    async with running_intake(tmp_path, suite, relay=relay) as intake:
        client = await _client(aiohttp_client, intake)
        args = ["edge", "seal", str(payload), "--key", str(tmp_path / "hd-1.key")]
        args += ["--pilot", "hospital-a", "--source", "hd-1", "--seq", "5"]
        args += ["--subject", SUBJECT, "--consent", CONSENT]
        printed = await _run(*args)
        assert printed[0] == 0, printed[2]
        envelope = json.loads(printed[1])
        assert envelope["header"]["seq"] == 5 and envelope["header"]["source"] == "hd-1"
        posted = await _run(*args, "--post", str(client.make_url("/")))
        assert posted[0] == 0, posted[2]
        answer = json.loads(posted[1])
        assert answer["status"] == 202
        refused = await _run(*args[:-4], "--post", str(client.make_url("/")))
        await client.close()
    assert refused[0] == 1 and "refused" in refused[2]
    (outer,) = stored_records(tmp_path / "outbox.db")
    assert outer["header"]["id"] == answer["id"]
    assert outer["body"]["origin"]["header"]["source"] == "hd-1"
    record = parse_record(json.dumps(outer).encode())
    check_commitment(record, suite)  # the device's commitments, in the relay's suite
    check_origin(record)


async def test_a_relay_of_each_suite_relays_its_devices(
    tmp_path: Path, aiohttp_client: Any, suite: Suite
) -> None:
    device = Device.of(suite)
    async with running_intake(tmp_path, suite, relay=relay_of(device)) as intake:
        client = await _client(aiohttp_client, intake)
        envelope = device.envelope()
        assert (await client.post("/relay", json=envelope)).status == 202
        assert (await client.post("/relay", json=envelope)).status == 200  # relayed before
        # A device of the other suite is not one of this relay's, whatever its id.
        other = next(s for s in SUITES.values() if s is not suite)
        stranger = Device.of(other, device.source).envelope()
        refused = await client.post("/relay", json=stranger)
        assert refused.status == 403 and "wrong_device_key" in await _diagnostics(refused)
        await client.close()
    (outer,) = stored_records(tmp_path / "outbox.db")
    record = parse_record(json.dumps(outer).encode())
    check_commitment(record, suite)
    check_origin(record)
    assert record.header.key == intake.signer.key_id
    assert record.body.origin is not None
    check_signature(
        record.body.origin.header.canonical(), record.body.origin.sig, device.key.public_key()
    )


async def _run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        SWIFTCHAIN, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
