"""A hub of a sequencer process and two front ends (``swiftchain hub --workers 2``): what one
front end changes is in force on the very next request or message the other one takes.

Each HTTP connection stays with the front end that accepted it (the ``Swiftchain-Front``
header names it), so a test holds one connection to each and sends the change on one and
the next request on the other. MQTT messages go to either front end (the broker's shared
subscription picks): a change is followed at once by several records, so both take some.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cluster.wire import Hello, frame, read_to_front
from ledger.keys import load_private_key
from ledger.suite import Suite
from tests.support.access import (
    ASSERTION_TYPE,
    AUDITOR,
    HOSPITAL,
    Device,
    HospitalClient,
    consent_document,
)
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ProcessHub, process_hub
from tests.support.records import PILOT, TYPE, make

SUBJECT = "pt-front0001"
FRONT = "Swiftchain-Front"
#: Connections tried to reach both front ends (the kernel spreads them; a bound, not a hope).
CONNECTION_TRIES = 200


@pytest.fixture
def fronts_hub(
    tmp_path: Path, hub_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProcessHub]:
    """Two front ends, whatever ``SWIFTCHAIN_HUB_WORKERS`` the suite runs the others with."""
    monkeypatch.setenv("SWIFTCHAIN_HUB_WORKERS", "2")
    hub = process_hub(tmp_path / "hub", hub_broker.url, workers=2, batch_max_ms=2)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def fronts_hub_on_each_suite(
    tmp_path: Path, hub_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch, suite: Suite
) -> Iterator[ProcessHub]:
    """``fronts_hub`` on each crypto suite: every front end checks records in it."""
    monkeypatch.setenv("SWIFTCHAIN_HUB_WORKERS", "2")
    hub = process_hub(tmp_path / "hub", hub_broker.url, suite=suite, workers=2, batch_max_ms=2)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def fronts_hub_on_each_store(
    tmp_path: Path,
    hub_broker: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    store_kind: str,
    request: pytest.FixtureRequest,
) -> Iterator[ProcessHub]:
    """``fronts_hub`` with its access store and dead letters in SQLite files, then in a
    PostgreSQL database (both front ends open them at once)."""
    stores: dict[str, str] = {}
    if store_kind == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
        stores = {"access_store": url, "dead_letter_store": url}
    monkeypatch.setenv("SWIFTCHAIN_HUB_WORKERS", "2")
    hub = process_hub(tmp_path / "hub", hub_broker.url, workers=2, batch_max_ms=2, **stores)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


class Pinned:
    """One keep-alive HTTP connection, so one front end."""

    def __init__(self, hub: ProcessHub) -> None:
        url = urllib.parse.urlsplit(hub.http_url)
        self.conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        self.front = ""

    def call(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers = {**headers, "Content-Type": "application/fhir+json"}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        self.front = resp.getheader(FRONT) or ""
        return resp.status, json.loads(raw) if raw else None


def one_to_each(hub: ProcessHub) -> tuple[Pinned, Pinned]:
    """A connection to each of the two front ends."""
    by_front: dict[str, Pinned] = {}
    for _ in range(CONNECTION_TRIES):
        pinned = Pinned(hub)
        status, _ = pinned.call("GET", "/healthz", {})
        assert status == 200
        if pinned.front in by_front:
            pinned.conn.close()
            continue
        by_front[pinned.front] = pinned
        if len(by_front) == 2:
            a, b = by_front.values()
            return a, b
    raise AssertionError(f"only front ends {sorted(by_front)} answered {CONNECTION_TRIES} tries")


def at_once(calls: dict[str, tuple[Pinned, tuple[Any, ...]]]) -> dict[str, int]:
    """Each request on its connection, in a thread of its own, released together; the
    status each got."""
    go = threading.Barrier(len(calls))
    answers: dict[str, int] = {}

    def run(name: str, pinned: Pinned, request: tuple[Any, ...]) -> None:
        go.wait()
        answers[name], _ = pinned.call(*request)

    threads = [
        threading.Thread(target=run, args=(name, pinned, request))
        for name, (pinned, request) in calls.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def as_hospital(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "TREAT"}


async def test_a_withdrawal_on_one_front_end_is_in_force_on_the_next_request_to_the_other(
    fronts_hub: ProcessHub,
) -> None:
    hub = fronts_hub
    assert len(hub.children("front")) == 2 and len(hub.children("sequencer")) == 1
    hospital = HospitalClient(hub, "php-ehr", HOSPITAL).register()
    token = hospital.token()
    a, b = one_to_each(hub)
    assert a.front != b.front
    device = Device(hub)
    query = f"/fhir/Observation?subject=Patient/{SUBJECT}"
    for round_no in range(3):
        # Given on one front end (the roles swap each round), in force on the other.
        give, other = (a, b) if round_no % 2 == 0 else (b, a)
        consent_id = f"c-front-{round_no}"
        document = consent_document(consent_id, SUBJECT, sources=[device.source])
        status, consent = give.call("POST", "/fhir/Consent", as_hospital(token), document)
        assert status == 201, consent
        receipts = await device.publish(SUBJECT, consent_id, n=2)
        assert [r["status"] for r in receipts] == ["accepted"] * 2, receipts
        status, bundle = other.call("GET", query, as_hospital(token))
        assert status == 200 and bundle["entry"], bundle
        # Withdrawn on the other; the very next request, on the first, is refused.
        status, withdrawn = other.call(
            "POST", f"/fhir/Consent/{consent_id}/$withdraw", as_hospital(token)
        )
        assert status == 200 and withdrawn["status"] == "inactive", withdrawn
        status, outcome = give.call("GET", query, as_hospital(token))
        assert status == 403, outcome
        assert (give.front, other.front) in ((a.front, b.front), (b.front, a.front))
    # Every decision of both front ends is in the audit trail, asked on either.
    auditor = HospitalClient(hub, "commission-audit", AUDITOR, alg="EdDSA")
    audit_token = auditor.register(["system/*.rs"]).token("system/*.rs")
    for pinned in (a, b):
        status, audit = pinned.call(
            "GET", f"/api/v1/audit?subject={SUBJECT}", as_hospital(audit_token)
        )
        assert status == 200, audit
        searches = [e["decision"] for e in audit["entries"] if e["client"] == "php-ehr"]
        assert searches.count("deny") == 3 and searches.count("allow") == 3, searches


async def test_registry_changes_on_one_front_end_hold_for_records_any_front_end_takes(
    fronts_hub_on_each_suite: ProcessHub,
) -> None:
    hub = fronts_hub_on_each_suite
    async with MqttPeer(hub.mqtt_url) as peer:
        for n in range(4):
            # Registered through one front end (the admin API), published at once: the
            # records land on both front ends, and each knows the new source.
            source = f"station-new-{n}"
            key_path, key_id = hub.register_source(PILOT, source, [TYPE])
            key = load_private_key(key_path)
            for seq in range(1, 9):
                answer = await peer.send(make(key, seq, source=source))
                assert answer["status"] == "accepted", answer
            # Revoked: refused at once, whichever front end takes the record.
            hub.revoke_key(key_id)
            for seq in range(9, 17):
                answer = await peer.send(make(key, seq, source=source))
                assert answer["status"] == "rejected", answer
                assert answer["reason"] == "key_not_valid", answer


def test_a_client_assertion_is_used_once_across_front_ends(
    fronts_hub_on_each_store: ProcessHub,
) -> None:
    """RFC 7523 section 3: the same ``jti`` twice is a replay, whichever front end the
    second request reaches (the used ones are in the access store all of them share)."""
    fronts_hub = fronts_hub_on_each_store
    hospital = HospitalClient(fronts_hub, "php-ehr", HOSPITAL).register()
    a, b = one_to_each(fronts_hub)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for first, second in ((a, b), (b, a)):
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": hospital.assertion(),
                "scope": "system/Observation.rs",
            }
        )
        first.conn.request("POST", "/oauth/token", body=form, headers=headers)
        resp = first.conn.getresponse()
        assert resp.status == 200, resp.read()
        resp.read()
        second.conn.request("POST", "/oauth/token", body=form, headers=headers)
        resp = second.conn.getresponse()
        answer = json.loads(resp.read())
        assert resp.status == 401 and answer["error"] == "invalid_client", answer
        assert "already used" in answer["error_description"]


def test_an_update_racing_a_withdrawal_on_the_other_front_end_never_undoes_it(
    fronts_hub: ProcessHub,
) -> None:
    """Each front end decides a Consent change on the book it follows; the sequencer refuses
    one decided on a state another front end has changed since (409, ``consent_changed``),
    so an update decided on "active" cannot land after a withdrawal."""
    hospital = HospitalClient(fronts_hub, "php-ehr", HOSPITAL).register()
    token = hospital.token()
    a, b = one_to_each(fronts_hub)
    seen: set[int] = set()
    for n in range(10):
        consent_id = f"c-race-{n}"
        document = consent_document(consent_id, f"pt-race{n:05d}")
        status, _ = a.call("POST", "/fhir/Consent", as_hospital(token), document)
        assert status == 201
        update = ("PUT", f"/fhir/Consent/{consent_id}", as_hospital(token), document)
        withdraw = ("POST", f"/fhir/Consent/{consent_id}/$withdraw", as_hospital(token))
        answers = at_once({"update": (a, update), "withdraw": (b, withdraw)})
        assert answers["withdraw"] in (200, 409), answers
        assert answers["update"] in (200, 403, 409), answers
        seen.update(answers.values())
        status, final = b.call("GET", f"/fhir/Consent/{consent_id}", as_hospital(token))
        assert status == 200, final
        if answers["withdraw"] == 200:
            assert final["status"] == "inactive", (answers, final)
    assert 200 in seen


async def test_the_channel_answers_only_the_runs_own_front_ends(fronts_hub: ProcessHub) -> None:
    """The sequencer's socket is the operator's only (mode 0600), and even so a connection
    must open with the run's secret: one without it is closed unanswered."""
    path = fronts_hub.db_path.with_name("ledger.db.seq.sock")
    assert path.stat().st_mode & 0o777 == 0o600
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(frame(Hello(99, 1, "guessed")))
    await writer.drain()
    assert await asyncio.wait_for(read_to_front(reader), 10) is None
    writer.close()
    assert fronts_hub.request("GET", "/readyz")[0] == 200


async def test_every_front_ends_dashboard_counts_what_the_whole_hub_did(
    fronts_hub: ProcessHub,
) -> None:
    """The sequencer counts the records accepted, the front ends the ones they refused: the
    dashboard of either front end shows the sums (prometheus-client's multiprocess files)."""
    key_path, _ = fronts_hub.register_source(PILOT, "station-count", [TYPE])
    key = load_private_key(key_path)
    async with MqttPeer(fronts_hub.mqtt_url) as peer:
        for seq in range(1, 21):
            assert (await peer.send(make(key, seq, source="station-count")))["status"] == (
                "accepted"
            )
        refused = await peer.send(make(key, 3, source="station-count"))  # its seq is used
        assert refused["status"] == "rejected"
    a, b = one_to_each(fronts_hub)
    admin = {"Authorization": f"Bearer {fronts_hub.admin_token}"}
    for pinned in (a, b):
        ingest: dict[str, Any] = {}
        for _ in range(100):  # the dashboard samples once a second (bounded wait)
            status, summary = pinned.call("GET", "/api/v1/dashboard/summary", admin)
            assert status == 200, summary
            ingest = summary["ingest"]
            if ingest["accepted"] >= 20 and ingest["rejected"]["total"]:
                break
            await asyncio.sleep(0.1)
        assert ingest["accepted"] == 20, (pinned.front, ingest)
        assert ingest["rejected"]["by_reason"] == {"seq_reused": 1}, (pinned.front, ingest)
    text = fronts_hub.get_text("/metrics")
    assert "swiftchain_records_accepted_total 20.0" in text
