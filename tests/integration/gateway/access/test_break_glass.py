"""Every break-glass read shows: a Prometheus counter, a flag in the audit view, an alert on
the dashboard's access panel. And a pilot may choose to let break-glass reach past a
withdrawal (``break_glass_after_withdrawal: allow``); by default it may not."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pilots.registry import packaged_definitions
from tests.support.access import (
    AUDITOR,
    HOSPITAL,
    Device,
    HospitalClient,
    consent_document,
)
from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, _handle

UNIVERSITY = "harbour-university-hospital"
CLINIC = "seaview-clinic"


def glass_reads(hub: ThreadHub) -> dict[str, float]:
    """``swiftchain_break_glass_reads_total`` by reason, from ``/metrics``."""
    text = hub.get_text("/metrics")
    found = re.findall(r"^swiftchain_break_glass_reads_total\{(.*)\} (\S+)$", text, re.M)
    out: dict[str, float] = {}
    for labels, value in found:
        reason = re.search(r'reason="([^"]*)"', labels)
        assert reason is not None and 'pilot="chronic-care"' in labels, labels
        out[reason[1]] = float(value)
    return out


def summary_until(hub: ThreadHub, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The dashboard summary once ``done`` holds (it folds the log a checkpoint at a time)."""
    deadline = time.monotonic() + 20
    while True:
        summary: dict[str, Any] = hub.get_json("/api/v1/dashboard/summary")
        if done(summary):
            return summary
        assert time.monotonic() < deadline, json.dumps(summary["access"], indent=1)[:2000]
        time.sleep(0.2)


def search(client: HospitalClient, token: str, subject: str, purpose: str) -> tuple[int, Any]:
    path = f"/fhir/Observation?subject=Patient/{subject}"
    status, _, body = client.call("GET", path, token, purpose=purpose)
    if status == 200:
        return status, body["total"]
    return status, body["issue"][0]["details"]["coding"][0]["code"]


def test_every_break_glass_read_is_flagged_everywhere(
    access_hub: ThreadHub, hospital: HospitalClient, auditor: HospitalClient
) -> None:
    subject = "pt-glass0001"
    token = hospital.token()
    body = consent_document("c-glass-1", subject, actors=[CLINIC])
    assert hospital.call("POST", "/fhir/Consent", token, body=body)[0] == 201
    device = Device(access_hub, "php-ward-1", org=HOSPITAL)
    assert [r["status"] for r in asyncio.run(device.publish(subject, "c-glass-1", 2))] == [
        "accepted"
    ] * 2
    assert glass_reads(access_hub) == {}

    # The hospital is not named in the Consent: an emergency read goes ahead, flagged.
    assert search(hospital, token, subject, "ETREAT") == (200, 2)
    # An emergency attempt the pilot does not allow is flagged too, but is no read.
    clinic = HospitalClient(access_hub, "clinic-ehr", CLINIC).register()
    assert search(clinic, clinic.token(), subject, "ETREAT") == (403, "break_glass_not_allowed")

    assert glass_reads(access_hub) == {"break_glass_override": 1.0}
    status, _, audit = auditor.call("GET", f"/api/v1/audit?subject={subject}", auditor.token())
    assert status == 200, audit
    assert audit["break_glass_reads"] == 1
    flags = [(e["org"], e["break_glass"], e["break_glass_read"]) for e in audit["entries"]]
    assert flags == [(HOSPITAL, True, True), (CLINIC, True, False)]

    summary = summary_until(access_hub, lambda s: s["access"]["break_glass_alert"] is not None)
    alert = summary["access"]["break_glass_alert"]
    assert alert["code"] == "break_glass_reads" and alert["count"] == 1
    assert alert["latest"]["reason"] == "break_glass_override"
    assert alert["latest"]["org"] == HOSPITAL and alert["latest"]["subject"] != subject
    assert alert["message"].startswith("1 break-glass read to review; latest: php-ehr")
    assert summary["access"]["break_glass_reads"] == 1
    # A matter for the auditors, not a fault of the network.
    assert summary["network"]["status"] == "ok", summary["alerts"]
    page = access_hub.get_text("/dashboard")
    assert 'id="glass-alert"' in page


@pytest.fixture
def allowing_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    """A hub whose chronic-care pilot lets break-glass reach past a withdrawal."""
    definitions = tmp_path / "pilots"
    definitions.mkdir()
    for name, raw in packaged_definitions():
        text = raw.decode()
        if name == "chronic-care.yaml":
            assert "break_glass_after_withdrawal: refuse" in text
            text = text.replace(
                "break_glass_after_withdrawal: refuse", "break_glass_after_withdrawal: allow"
            )
        (definitions / name).write_text(text)
    hub: ThreadHub = _handle(
        ThreadHub,
        tmp_path / "hub",
        hub_broker.url,
        batch_max_ms=2,
        pilot_definitions=str(definitions),
    )
    hub.enforce_consent = True
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def test_a_pilot_may_let_break_glass_reach_past_a_withdrawal(allowing_hub: ThreadHub) -> None:
    subject = "pt-glass0002"
    hospital = HospitalClient(allowing_hub, "php-ehr", HOSPITAL).register()
    university = HospitalClient(allowing_hub, "huh-ehr", UNIVERSITY).register()
    auditor = HospitalClient(allowing_hub, "audit", AUDITOR, alg="EdDSA").register(["system/*.rs"])
    token, other = hospital.token(), university.token()
    body = consent_document("c-glass-2", subject, actors=[HOSPITAL])
    assert hospital.call("POST", "/fhir/Consent", token, body=body)[0] == 201
    device = Device(allowing_hub, "php-ward-2", org=HOSPITAL)
    assert asyncio.run(device.publish(subject, "c-glass-2"))[0]["status"] == "accepted"
    assert hospital.call("POST", "/fhir/Consent/c-glass-2/$withdraw", token)[0] == 200

    assert search(university, other, subject, "TREAT") == (403, "consent_inactive")
    assert search(university, other, subject, "ETREAT") == (200, 1)
    assert glass_reads(allowing_hub) == {"break_glass_after_withdrawal": 1.0}
    status, _, audit = auditor.call("GET", f"/api/v1/audit?subject={subject}", auditor.token())
    assert status == 200, audit
    (entry,) = [e for e in audit["entries"] if e["purpose"] == "ETREAT"]
    assert entry["reason"] == "break_glass_after_withdrawal" and entry["break_glass_read"]
