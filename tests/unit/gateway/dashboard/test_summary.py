"""The dashboard's figures and alerts as a specification: each panel's pure function."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from gateway.dashboard.summary import (
    HubSample,
    air_quality_chart,
    alerts,
    build_summary,
    checkpoint_state,
    commit_latency,
    consent_counts,
    histogram_quantile,
    parking_occupancy,
    rate_history,
    record_rates,
    rejections,
    status_of,
    traffic_chart,
    verification_state,
    window,
)
from gateway.dashboard.tally import AirPoint, LogTally, ParkingPoint, TrafficPoint
from gateway.dashboard.verification import Failure, IncrementalVerifier
from ledger.checkpoint import NoteSigner
from ledger.keys import generate_key

NOW = 1_780_000_000.0
INF = float("inf")


def sample(**kw: Any) -> HubSample:
    values: dict[str, Any] = {
        "at": NOW,
        "log_size": 100,
        "head_size": 100,
        "head_root": b"\x01" * 32,
        "persisted_size": 100,
        "connected": True,
        "healthy": True,
        "draining": False,
        "commit_queue": 0,
        "receipt_queue": 0,
        "receipts_dropped": 0.0,
        "accepted": 1000.0,
        "duplicates": 0.0,
        "rejected": {},
        "commit_failures": 0.0,
        "commit_buckets": ((0.001, 0.0), (0.01, 0.0), (INF, 0.0)),
        "commit_sum": 0.0,
        "commit_count": 0.0,
        "mqtt_errors": 0.0,
        "mqtt_connects": 1.0,
    }
    values.update(kw)
    return HubSample(**values)


def verifier() -> IncrementalVerifier:
    return IncrementalVerifier(NoteSigner("o", generate_key()).verifier, "o")


# -- rolling windows -------------------------------------------------------------------------


def test_window_picks_the_oldest_sample_inside() -> None:
    samples = [sample(at=NOW - 30), sample(at=NOW - 9), sample(at=NOW - 3), sample(at=NOW)]
    first, last = window(samples, 10)
    assert first.at == NOW - 9 and last.at == NOW
    assert window([sample()], 10)[0].at == NOW
    with pytest.raises(ValueError):
        window([], 10)


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 0.00325), (0.25, 0.00075), (0.0, 0.0), (1.0, 0.01)],
)
def test_histogram_quantile_interpolates_inside_buckets(q: float, expected: float) -> None:
    buckets = ((0.001, 10.0), (0.01, 30.0), (INF, 30.0))
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_histogram_quantile_of_nothing_and_of_the_overflow_bucket() -> None:
    assert histogram_quantile(0.5, ()) is None
    assert histogram_quantile(0.5, ((0.1, 0.0), (INF, 0.0))) is None
    assert histogram_quantile(0.99, ((0.1, 1.0), (INF, 10.0))) == 0.1


def test_commit_latency_over_the_window_and_when_quiet() -> None:
    first = sample(
        at=NOW - 60,
        commit_buckets=((0.001, 5.0), (0.01, 5.0), (INF, 5.0)),
        commit_sum=0.004,
        commit_count=5.0,
    )
    last = sample(
        commit_buckets=((0.001, 5.0), (0.01, 15.0), (INF, 15.0)),
        commit_sum=0.054,
        commit_count=15.0,
    )
    got = commit_latency(first, last)
    assert got["commits"] == 10 and got["mean_ms"] == 5.0
    assert got["p50_ms"] == pytest.approx(5.5) and got["window_s"] == 60
    quiet = commit_latency(last, last)  # no commit lately: the whole run's figures
    assert quiet["commits"] == 15 and quiet["mean_ms"] == 3.6


def test_rejections_by_reason_and_share() -> None:
    first = sample(at=NOW - 10, accepted=100.0, rejected={"bad_signature": 1.0})
    last = sample(accepted=110.0, rejected={"bad_signature": 6.0, "oversize": 5.0})
    got = rejections(first, last)
    assert got["by_reason"] == {"bad_signature": 6, "oversize": 5}
    assert got["total"] == 11 and got["recent"] == 10
    assert got["share"] == 0.5 and got["per_second"] == 1.0


# -- throughput --------------------------------------------------------------------------------


def test_record_rates_use_complete_seconds_only() -> None:
    now = int(NOW)
    per_second = {
        now - 11: Counter({"a": 100}),  # outside the window
        now - 10: Counter({"a": 10, "b": 5}),
        now - 1: Counter({"a": 10}),
        now: Counter({"a": 1000}),  # the current second is not over yet
    }
    assert record_rates(per_second, NOW + 0.5) == {"a": 2.0, "b": 0.5}
    history = rate_history(per_second, NOW + 0.5, points=10)
    assert history["start"] == now - 10
    assert history["pilots"]["a"] == [10, 0, 0, 0, 0, 0, 0, 0, 0, 10]
    assert history["pilots"]["b"][0] == 5


# -- city charts -------------------------------------------------------------------------------


def test_air_quality_buckets_the_hours_before_the_newest_reading() -> None:
    hour = 3600.0
    air = {
        "aq-2": [AirPoint(NOW - 7 * hour, 99.0, 99.0), AirPoint(NOW, 10.0, None)],
        "aq-1": [AirPoint(NOW - 5.5 * hour, 20.0, 30.0), AirPoint(NOW - 5.4 * hour, 30.0, 50.0)],
    }
    chart = air_quality_chart(air, hours=6, buckets=6)
    assert chart["start"] == NOW - 6 * hour and chart["end"] == NOW and chart["step"] == hour
    assert [s["id"] for s in chart["stations"]] == ["aq-1", "aq-2"]
    aq1, aq2 = chart["stations"]
    assert aq1["pm25"] == [25.0, None, None, None, None, None]
    assert aq1["no2"][0] == 40.0
    assert aq2["pm25"] == [None, None, None, None, None, 10.0]  # the 7-hour-old one is out
    assert aq2["latest"]["pm25"] == 10.0 and aq2["latest"]["no2"] is None
    assert air_quality_chart({})["stations"] == []


def test_traffic_chart_and_parking() -> None:
    traffic = {"seg-1": [TrafficPoint(NOW, 1234.56, 41.26, 0.1234)]}
    chart = traffic_chart(traffic, hours=1, buckets=4)
    segment = chart["segments"][0]
    assert segment["latest"] == {
        "t": NOW,
        "vehicles_per_hour": 1235.0,
        "speed_kmh": 41.3,
        "occupancy": 0.123,
    }
    assert segment["flow"][-1] == 1234.6
    assert traffic_chart({})["segments"] == []
    parks = parking_occupancy({"p2": ParkingPoint(NOW, 60, 50), "p1": ParkingPoint(NOW, 25, 100)})
    assert [(p["id"], p["share"]) for p in parks] == [("p1", 0.25), ("p2", 1.0)]


def test_consent_counts() -> None:
    assert consent_counts(Counter({"active": 2, "withdrawn": 1})) == {
        "active": 2,
        "withdrawn": 1,
        "other": 0,
    }


# -- checkpoint, verification, alerts ------------------------------------------------------------


def test_checkpoint_age_is_an_alert_only_while_the_log_outgrows_it() -> None:
    fresh = checkpoint_state(sample(), head_since=NOW - 1)
    assert fresh["age_s"] == 1 and not fresh["stale"] and not fresh["idle"]
    idle = checkpoint_state(sample(), head_since=NOW - 600)
    assert idle["idle"] and not idle["stale"]
    behind = checkpoint_state(sample(log_size=150), head_since=NOW - 6)
    assert behind["stale"] and behind["behind"] == 50
    unpersisted = checkpoint_state(sample(persisted_size=90), head_since=NOW - 6)
    assert unpersisted["stale"]
    assert checkpoint_state(sample(head_size=None, head_root=None), None)["root"] is None


def test_verification_states() -> None:
    v = verifier()
    assert verification_state(v, 0)["state"] == "empty"
    assert verification_state(v, 10)["state"] == "catching_up"
    v.verified_size = 10
    assert verification_state(v, 10)["state"] == "verified"
    v.failure = Failure(7, "root differs from the signed checkpoint")
    got = verification_state(v, 10)
    assert got["state"] == "failed" and got["failure"] == {"index": 7, "what": v.failure.what}


QUIET = {"recent": 0, "share": 0.0, "window_s": 10.0}
OK_CP = {"stale": False}
OK_V: dict[str, Any] = {"failure": None}


def test_no_alerts_when_all_is_well() -> None:
    found = alerts(sample(), OK_CP, OK_V, QUIET)
    assert found == [] and status_of(found) == "ok"


@pytest.mark.parametrize(
    ("change", "code", "level"),
    [
        ({"sample": {"connected": False}}, "broker_disconnected", "critical"),
        ({"sample": {"healthy": False}}, "commit_failed", "critical"),
        ({"sample": {"draining": True}}, "draining", "warning"),
        ({"cp": {"stale": True, "age_s": 7.0, "behind": 3}}, "checkpoint_stale", "warning"),
        ({"v": {"failure": {"index": 4, "what": "x"}}}, "verification_failed", "critical"),
        ({"rej": {"recent": 5, "share": 0.2, "window_s": 10.0}}, "rejections_spike", "warning"),
    ],
)
def test_each_fault_raises_its_alert(change: dict[str, Any], code: str, level: str) -> None:
    found = alerts(
        replace(sample(), **change.get("sample", {})),
        change.get("cp", OK_CP),
        change.get("v", OK_V),
        change.get("rej", QUIET),
    )
    assert [(a.code, a.level) for a in found] == [(code, level)]
    assert status_of(found) == level


def test_a_few_rejections_among_many_records_are_no_spike() -> None:
    assert alerts(sample(), OK_CP, OK_V, {"recent": 5, "share": 0.01, "window_s": 10.0}) == []
    assert alerts(sample(), OK_CP, OK_V, {"recent": 2, "share": 1.0, "window_s": 10.0}) == []


def test_build_summary_is_plain_json_with_every_panel() -> None:
    tally = LogTally()
    tally.kinds.update({"record": 3})
    tally.per_second[int(NOW) - 1] = Counter({"city": 3})
    summary = build_summary(
        origin="o", samples=[sample()], tally=tally, verifier=verifier(), head_since=NOW
    )
    assert set(summary) >= {
        "network",
        "alerts",
        "ledger",
        "checkpoint",
        "verification",
        "rates",
        "ingest",
        "broker",
        "air_quality",
        "traffic",
        "parking",
        "consents",
        "access",
    }
    assert summary["network"] == {"origin": "o", "suite": "ed25519-sha256", "status": "ok"}
    assert summary["rates"]["per_pilot"] == {"city": 0.3}
    assert summary["checkpoint"]["root"] == "01" * 32
    __import__("json").dumps(summary)
