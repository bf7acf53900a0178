"""The dashboard's live stream against a hostile client. It was capped at 32 connections for
everyone, so one client holding 32 sockets locked every browser out; and it sent anyone the
access decisions' lines (client, purpose, a pseudonym's prefix: each about one person). Now
one address gets a few streams and the others still get theirs, and without the admin token
the stream and the snapshot carry the counts only."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from typing import Any

import aiohttp

from gateway.dashboard import DASHBOARD
from tests.support.access import ATTACK_SUBJECT as SUBJECT
from tests.support.access import HospitalClient, http
from tests.support.hub import ThreadHub

from .conftest import AttackTally

STREAM = "/api/v1/dashboard/stream"
SUMMARY = "/api/v1/dashboard/summary"


async def first_event(response: aiohttp.ClientResponse) -> dict[str, Any]:
    async with asyncio.timeout(10):
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                return dict(json.loads(line.removeprefix("data: ")))
    raise AssertionError("the stream ended before its first event")


async def wait_for_no_streams(hub: ThreadHub) -> None:
    monitor = hub.app[DASHBOARD]
    for _ in range(100):
        if monitor.streams == 0 and not monitor.streams_by_peer:
            return
        await asyncio.sleep(0.1)  # another thread's counters: nothing to await
    raise AssertionError(f"{monitor.streams} streams still open")


async def hold_streams(hub: ThreadHub, attacks: AttackTally) -> None:
    url = hub.http_url + STREAM
    monitor = hub.app[DASHBOARD]
    async with AsyncExitStack() as stack:
        attacker = await stack.enter_async_context(aiohttp.ClientSession())
        statuses = []
        for _ in range(monitor.max_streams):  # as many as the hub holds in all
            response = await stack.enter_async_context(attacker.get(url))
            statuses.append(response.status)
            if response.status != 200:
                assert (await response.json())["error"] == "too_many_streams"
        attacks.tried("dashboard streams held by one client (HTTP)", len(statuses))

        # A browser on another loopback address still gets its stream.
        other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        browser = await stack.enter_async_context(aiohttp.ClientSession(connector=other))
        response = await stack.enter_async_context(browser.get(url))
        assert response.status == 200, await response.text()
        assert (await first_event(response))["ledger"]["size"] >= 0
        # The attacker got its share, and a 429 saying so for every stream past it.
        assert statuses.count(200) == monitor.max_streams_per_peer, statuses
        assert set(statuses[monitor.max_streams_per_peer :]) == {429}, statuses


async def test_one_client_cannot_hold_every_stream(
    access_hub: ThreadHub, attacks: AttackTally
) -> None:
    await hold_streams(access_hub, attacks)
    await wait_for_no_streams(access_hub)


def access_lines(hub: ThreadHub, wait_s: float = 10) -> list[dict[str, Any]]:
    """The access decisions' lines of the operators' snapshot, once there are any."""
    deadline = time.monotonic() + wait_s
    while True:
        lines = list(hub.get_json(SUMMARY)["access"]["recent"])  # with the admin token
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


async def stream_event(hub: ThreadHub, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(hub.http_url + STREAM, headers=headers) as response,
    ):
        if response.status != 200:
            return response.status, await response.json()
        return response.status, await first_event(response)


async def test_without_the_admin_token_the_dashboard_carries_counts_only(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    # A search about a person: an ``access`` entry (a deny: no consent yet).
    status, _, _ = hospital.call(
        "GET", f"/fhir/Observation?subject=Patient/{SUBJECT}", hospital.token()
    )
    assert status == 403
    lines = await asyncio.to_thread(access_lines, access_hub)
    assert lines and lines[0]["client"] == hospital.client_id

    status, _, public = await asyncio.to_thread(http, "GET", access_hub.http_url + SUMMARY)
    assert status == 200
    _, streamed = await stream_event(access_hub, {})
    for snapshot in (public, streamed):
        access = snapshot["access"]
        assert access["recent"] == [] and access["recent_withheld"] is True
        assert access["deny"] >= 1
        text = json.dumps(snapshot)
        assert SUBJECT[:6] not in text and hospital.client_id not in text
    attacks.tried("access decisions read without the admin token (HTTP)", 2)

    admin = {"Authorization": f"Bearer {access_hub.admin_token}"}
    status, operators = await stream_event(access_hub, admin)
    assert status == 200 and operators["access"]["recent"], operators
    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": "Bearer"}):
        status, body = await stream_event(access_hub, headers)
        assert status == 401 and body["error"] == "unauthorized", body
        status, _, body = await asyncio.to_thread(
            http, "GET", access_hub.http_url + SUMMARY, headers=headers
        )
        assert status == 401 and body["error"] == "unauthorized", body
    attacks.tried("dashboard with a wrong admin token (HTTP)", 4)
    # A proxy's Basic credentials are no admin token: the public view.
    status, streamed = await stream_event(access_hub, {"Authorization": "Basic eDp5"})
    assert status == 200 and streamed["access"]["recent"] == []
    await wait_for_no_streams(access_hub)
