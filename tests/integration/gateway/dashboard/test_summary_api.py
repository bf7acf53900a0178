"""The dashboard's data through a real hub: records over real MQTT, the JSON snapshot, the
SSE stream (content, bounds, clean-up), the page's files, faults turning into alerts, and a
log of v1 and v2 consent and access entries: counts for everyone, lines for operators."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from gateway.dashboard import DASHBOARD
from ledger.envelope import seal
from ledger.keys import generate_key, load_private_key
from ledger.suite import Suite
from tests.support.broker import Mosquitto
from tests.support.city import ERASED, ORIGIN, SUBJECTS, seed_consents_and_access
from tests.support.hub import MqttPeer, ThreadHub, records_topic, thread_hub

PILOT, SOURCE, TYPE = "city-air", "station-1", "city.air-quality"


def poll(hub: ThreadHub, done: Callable[[dict[str, Any]], bool], wait_s: float = 10) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        summary = hub.get_json("/api/v1/dashboard/summary")
        if done(summary):
            return summary
        assert time.monotonic() < deadline, json.dumps(summary, indent=1)[:3000]
        time.sleep(0.2)


async def read_events(url: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    """The first ``count`` events of an SSE stream: (id, data)."""
    events: list[tuple[str, dict[str, Any]]] = []
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/event-stream"
        fields: dict[str, str] = {}
        async with asyncio.timeout(10):
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line:
                    name, _, value = line.partition(": ")
                    fields[name] = value
                    continue
                if fields.get("event") == "summary":
                    events.append((fields["id"], json.loads(fields["data"])))
                    if len(events) == count:
                        break
                fields = {}
    return events


async def wait_for_no_streams(hub: ThreadHub) -> None:
    """A closed stream is noticed at its next write (within a second or two)."""
    monitor = hub.app[DASHBOARD]
    for _ in range(50):
        if monitor.streams == 0:
            return
        await asyncio.sleep(0.1)  # another thread's counter: nothing to await
    raise AssertionError(f"{monitor.streams} streams still open")


async def test_records_over_mqtt_show_in_summary_and_stream(
    suite_hub: ThreadHub, suite: Suite
) -> None:
    # On each crypto suite: the dashboard re-verifies the log in its suite's tree hash.
    running_hub = suite_hub
    key_path, _ = running_hub.register_source(PILOT, SOURCE, [TYPE])
    key = load_private_key(key_path)
    async with MqttPeer(running_hub.mqtt_url) as peer:
        for seq in range(1, 6):
            record = seal(
                pilot=PILOT,
                source=SOURCE,
                seq=seq,
                type=TYPE,
                payload={"station": SOURCE, "pm25": 10.0 + seq, "no2": 20 + seq},
                signing_key=key,
            )
            assert (await peer.send(record))["status"] == "accepted"

    summary = poll(
        running_hub,
        lambda s: (
            s["ledger"]["kinds"].get("record") == 5
            and s["verification"]["state"] == "verified"
            and sum(s["rates"]["history"]["pilots"].get(PILOT, [])) == 5
        ),
    )
    size = summary["ledger"]["size"]
    assert summary["network"] == {
        "origin": "test.swiftchain/ledger",
        "suite": suite.name,
        "status": "ok",
    }
    assert summary["alerts"] == []
    assert summary["verification"]["verified_size"] == size == summary["checkpoint"]["size"]
    assert summary["ledger"]["records_by_pilot"] == {PILOT: 5}
    assert summary["ledger"]["kinds"]["registry"] >= 2
    assert summary["rates"]["per_pilot"][PILOT] > 0
    assert summary["broker"]["connected"] is True
    assert summary["ingest"]["accepted"] == 5
    assert summary["ingest"]["commit_latency"]["commits"] >= 1
    assert len(summary["checkpoint"]["root"]) == 64
    (station,) = summary["air_quality"]["stations"]
    assert station["id"] == SOURCE and station["latest"]["pm25"] == 15.0
    assert station["latest"]["no2"] == 25.0

    events = await read_events(running_hub.http_url + "/api/v1/dashboard/stream", 3)
    ids = [int(i) for i, _ in events]
    assert ids == sorted(ids) and len(set(ids)) == 3
    for _, data in events:
        assert data["ledger"]["size"] == size
        assert data["air_quality"]["stations"][0]["id"] == SOURCE
    # The stream ended with the client: nothing left open on the hub.
    await wait_for_no_streams(running_hub)


async def test_streams_are_bounded(running_hub: ThreadHub) -> None:
    monitor = running_hub.app[DASHBOARD]
    monitor.max_streams = 1
    url = running_hub.http_url + "/api/v1/dashboard/stream"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as first:
            assert first.status == 200
            await first.content.readline()
            async with session.get(url) as second:
                assert second.status == 503
                assert (await second.json())["error"] == "too_many_streams"
    await wait_for_no_streams(running_hub)
    events = await read_events(url, 1)
    assert len(events) == 1


async def test_rejections_spike_turns_the_banner_amber(running_hub: ThreadHub) -> None:
    running_hub.register_source(PILOT, SOURCE, [TYPE])
    stranger = generate_key()
    async with MqttPeer(running_hub.mqtt_url) as peer:
        for seq in range(1, 7):
            forged = seal(
                pilot=PILOT, source=SOURCE, seq=seq, type=TYPE, payload={}, signing_key=stranger
            )
            await peer.publish(records_topic(PILOT, SOURCE), forged.to_wire())
        await peer.wait_for(6)
    summary = poll(running_hub, lambda s: s["ingest"]["rejected"]["total"] == 6)
    assert summary["network"]["status"] == "warning", summary["alerts"]
    assert [a["code"] for a in summary["alerts"]] == ["rejections_spike"]
    rejected = summary["ingest"]["rejected"]
    assert sum(rejected["by_reason"].values()) == 6 and rejected["recent"] == 6


async def test_broker_loss_is_critical(running_hub: ThreadHub, hub_broker: Mosquitto) -> None:
    poll(running_hub, lambda s: s["network"]["status"] == "ok" and s["broker"]["connected"])
    hub_broker.stop()
    summary = poll(running_hub, lambda s: not s["broker"]["connected"])
    assert summary["network"]["status"] == "critical"
    assert "broker_disconnected" in [a["code"] for a in summary["alerts"]]


def test_a_tampered_ledger_fails_live_verification(tmp_path: Path, hub_broker: Mosquitto) -> None:
    db = tmp_path / "hub" / "ledger.db"
    seeded = seed_consents_and_access(db)
    with sqlite3.connect(db) as conn:  # an insider edits a consent decision in place
        leaf = conn.execute("SELECT leaf FROM entries WHERE idx = 3").fetchone()[0]
        conn.execute("UPDATE entries SET leaf = ? WHERE idx = 3", (leaf.replace(b"act", b"ACT"),))
    with thread_hub(tmp_path / "hub", hub_broker.url, origin=ORIGIN) as hub:
        summary = poll(hub, lambda s: s["verification"]["state"] != "catching_up")
    assert summary["verification"]["state"] == "failed"
    assert summary["verification"]["failure"]["index"] == 3
    assert summary["verification"]["verified_size"] == 0
    assert summary["network"]["status"] == "critical"
    assert summary["alerts"][0]["code"] == "verification_failed"
    # What was readable is still counted, and no pseudonym leaves the hub whole.
    assert summary["consents"]["withdrawn"] == seeded["withdrawn"]
    assert summary["access"]["deny"] == seeded["deny"]
    text = json.dumps(summary)
    assert not any(subject[:12] in text for subject in SUBJECTS)


async def test_counts_for_everyone_and_lines_for_operators(
    seeded_hub: ThreadHub, seeded: dict[str, int]
) -> None:
    operators = poll(seeded_hub, lambda s: s["ledger"]["kinds"].get("access") == seeded["access"])
    url = seeded_hub.http_url + "/api/v1/dashboard/summary"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        public = await response.json()
    (_, streamed), *_ = await read_events(seeded_hub.http_url + "/api/v1/dashboard/stream", 1)
    for snapshot in (operators, public, streamed):
        # Counted right from v1 leaves, v2 leaves through their openings, and the Consent
        # withdrawn with erasure whose openings are gone.
        counts = {k: seeded[k] for k in ("active", "withdrawn", "other")}
        assert snapshot["consents"] == counts
        assert snapshot["access"]["deny"] == seeded["deny"]
        assert snapshot["access"]["break_glass"] == 1
        assert snapshot["ledger"]["unreadable"] == 0
    for snapshot in (public, streamed):
        access = snapshot["access"]
        assert access["recent"] == [] and access["recent_withheld"] is True
        text = json.dumps(snapshot)
        for subject in SUBJECTS:
            assert subject[:6] not in text
        for name in ("cns-", "hospital-a-ehr", "research-etl", "consent withdrawn"):
            assert name not in text
    # Operators get every decision's line: the v2 ones opened, the forgotten one without
    # its subject and reason.
    lines = operators["access"]["recent"]
    assert len(lines) == seeded["access"] and operators["access"]["recent_withheld"] is False
    shown = {line["subject"] for line in lines if line["subject"] is not None}
    forgotten = [line for line in lines if line["type"].startswith("fhir.") and not line["subject"]]
    assert {SUBJECTS[i % 12][:6] + "…" for i in range(14) if i % 4 != 3} - shown == {
        SUBJECTS[ERASED][:6] + "…"
    }
    assert [(f["reason"], f["client"]) for f in forgotten] == [("", "hospital-b-ehr")]
    assert {line["reason"] for line in lines} >= {"consent withdrawn", "policy and consent permit"}


def test_the_page_and_its_files(running_hub: ThreadHub) -> None:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(running_hub.http_url + "/")
        raise AssertionError("/ did not redirect")
    except urllib.error.HTTPError as exc:
        assert exc.code == 302 and exc.headers["Location"] == "/dashboard"

    with urllib.request.urlopen(running_hub.http_url + "/dashboard") as page:
        html = page.read().decode()
        assert page.headers.get_content_type() == "text/html"
        csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "/dashboard/static/dashboard.js" in html and "http" not in html.split("<body>")[1]
    for name, ctype in [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")]:
        with urllib.request.urlopen(f"{running_hub.http_url}/dashboard/static/{name}") as f:
            assert f.headers.get_content_type() == ctype
            body = f.read().decode()
            assert "http://" not in body.replace("http://www.w3.org/2000/svg", "")
            assert "https://" not in body
    for bad in ("index.html", "..%2Fsummary.py", "nope.js"):
        status, answer = running_hub.request("GET", f"/dashboard/static/{bad}")
        assert status == 404 and answer["error"] == "not_found"
