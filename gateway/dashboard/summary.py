"""The dashboard's figures: pure functions of the log tally, the hub's own counters and the
verifier's state. ``build_summary`` composes them into the JSON that
``/api/v1/dashboard/summary`` serves and ``/api/v1/dashboard/stream`` sends every second.

Nothing here reads a clock, a file or a socket: the monitor gathers, these decide, and a test
of a function here is the specification of one panel or one alert.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ledger.suite import DEFAULT_SUITE, Suite

from .tally import AccessDecision, AirPoint, LogTally, ParkingPoint, TrafficPoint
from .verification import IncrementalVerifier

#: A checkpoint this old while the log has entries it does not cover (or the store lacks
#: it) is an alert: the hub signs one at least every second while the log grows.
CHECKPOINT_MAX_AGE_S = 5.0
#: Rolling windows: records per second per pilot; rejections and commit latency.
RATE_WINDOW_S = 10
REJECT_WINDOW_S = 10
COUNTER_WINDOW_S = 60
#: Seconds of per-pilot history in the throughput chart.
RATE_HISTORY_POINTS = 60
#: A rejection spike: at least this many in the window, and at least this share of messages.
REJECT_SPIKE_MIN = 3
REJECT_SPIKE_SHARE = 0.10
#: The city charts: hours back from the newest reading, and buckets across them.
CHART_HOURS = 6.0
CHART_BUCKETS = 72

Level = Literal["critical", "warning"]


@dataclass(frozen=True)
class HubSample:
    """The hub's own counters at one moment (gathered on the event loop by the monitor)."""

    at: float
    log_size: int
    head_size: int | None
    head_root: bytes | None
    persisted_size: int
    connected: bool
    healthy: bool
    draining: bool
    commit_queue: int
    receipt_queue: int
    receipts_dropped: float
    accepted: float
    duplicates: float
    rejected: Mapping[str, float]
    commit_failures: float
    commit_buckets: tuple[tuple[float, float], ...]
    """(upper bound, cumulative count) of the commit-latency histogram, +Inf last."""
    commit_sum: float
    commit_count: float
    mqtt_errors: float
    mqtt_connects: float


@dataclass(frozen=True)
class Alert:
    level: Level
    code: str
    message: str


# -- counters over a rolling window --------------------------------------------------------------


def window(samples: Sequence[HubSample], seconds: float) -> tuple[HubSample, HubSample]:
    """(oldest sample at most ``seconds`` older than the newest, newest sample)."""
    if not samples:
        raise ValueError("no samples")
    newest = samples[-1]
    for sample in samples:
        if sample.at >= newest.at - seconds:
            return sample, newest
    return newest, newest  # pragma: no cover - the newest always qualifies


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated inside its bucket the way
    Prometheus' ``histogram_quantile`` does; None when the histogram is empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # above the largest finite bucket: its bound is our best
            inside = count - lower_count
            fraction = (rank - lower_count) / inside if inside > 0 else 1.0
            return lower_bound + (bound - lower_bound) * fraction
        lower_bound, lower_count = bound, count
    return lower_bound  # pragma: no cover - the +Inf bucket holds the total


def commit_latency(first: HubSample, last: HubSample) -> dict[str, Any]:
    """Commit latency over the window between two samples, in milliseconds."""
    first_counts = dict(first.commit_buckets)
    delta = [(bound, count - first_counts.get(bound, 0.0)) for bound, count in last.commit_buckets]
    commits = last.commit_count - first.commit_count
    if commits <= 0:
        delta = list(last.commit_buckets)  # quiet lately: show the whole run's figures
        commits, total = last.commit_count, last.commit_sum
    else:
        total = last.commit_sum - first.commit_sum

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    return {
        "p50_ms": ms(histogram_quantile(0.5, delta)),
        "p95_ms": ms(histogram_quantile(0.95, delta)),
        "mean_ms": ms(total / commits) if commits > 0 else None,
        "commits": int(commits),
        "window_s": round(last.at - first.at, 1),
    }


def rejections(first: HubSample, last: HubSample) -> dict[str, Any]:
    by_reason = {k: int(v) for k, v in sorted(last.rejected.items()) if v > 0}
    recent = sum(last.rejected.values()) - sum(first.rejected.values())
    accepted = last.accepted - first.accepted
    seconds = max(last.at - first.at, 1.0)
    total = recent + accepted
    return {
        "by_reason": by_reason,
        "total": sum(by_reason.values()),
        "recent": int(recent),
        "per_second": round(recent / seconds, 2),
        "share": round(recent / total, 3) if total > 0 else 0.0,
        "window_s": round(last.at - first.at, 1),
    }


# -- throughput ------------------------------------------------------------------------------


def record_rates(
    per_second: Mapping[int, Counter[str]], now: float, seconds: int = RATE_WINDOW_S
) -> dict[str, float]:
    """Records per second per pilot over the last ``seconds`` complete seconds."""
    end = int(now)
    totals: Counter[str] = Counter()
    for second in range(end - seconds, end):
        totals.update(per_second.get(second, Counter()))
    return {pilot: round(n / seconds, 2) for pilot, n in sorted(totals.items())}


def rate_history(
    per_second: Mapping[int, Counter[str]], now: float, points: int = RATE_HISTORY_POINTS
) -> dict[str, Any]:
    """Records committed in each of the last ``points`` complete seconds, per pilot."""
    start = int(now) - points
    pilots = sorted({p for second, c in per_second.items() if second >= start for p in c})
    return {
        "start": start,
        "pilots": {
            p: [per_second.get(s, Counter()).get(p, 0) for s in range(start, start + points)]
            for p in pilots
        },
    }


# -- the city charts ---------------------------------------------------------------------------


def _bucketed(
    points: Iterable[tuple[float, float | None]], start: float, step: float, count: int
) -> list[float | None]:
    """Mean of the values falling in each of ``count`` buckets after ``start``."""
    sums, ns = [0.0] * count, [0] * count
    for t, value in points:
        if value is None or t <= start:
            continue
        i = min(int((t - start) / step), count - 1)
        sums[i] += value
        ns[i] += 1
    return [round(s / n, 1) if n else None for s, n in zip(sums, ns, strict=True)]


def _span(series: Mapping[str, Sequence[Any]], hours: float) -> tuple[float, float] | None:
    newest = max((p.t for points in series.values() for p in points), default=None)
    return None if newest is None else (newest - hours * 3600, newest)


def air_quality_chart(
    air: Mapping[str, Sequence[AirPoint]],
    hours: float = CHART_HOURS,
    buckets: int = CHART_BUCKETS,
) -> dict[str, Any]:
    """PM2.5 and NO2 (µg/m³) per station over the ``hours`` before the newest reading."""
    span = _span(air, hours)
    if span is None:
        return {"start": None, "end": None, "step": None, "stations": []}
    start, end = span
    step = (end - start) / buckets
    stations = []
    for station in sorted(air):
        points = list(air[station])
        latest = max(points, key=lambda p: p.t)
        stations.append(
            {
                "id": station,
                "pm25": _bucketed(((p.t, p.pm25) for p in points), start, step, buckets),
                "no2": _bucketed(((p.t, p.no2) for p in points), start, step, buckets),
                "latest": {
                    "t": latest.t,
                    "pm25": latest.pm25,
                    "no2": latest.no2,
                    "pm10": latest.pm10,
                    "o3": latest.o3,
                },
            }
        )
    return {"start": start, "end": end, "step": step, "stations": stations}


def traffic_chart(
    traffic: Mapping[str, Sequence[TrafficPoint]],
    hours: float = CHART_HOURS,
    buckets: int = CHART_BUCKETS,
) -> dict[str, Any]:
    """Flow (vehicles/h) and mean speed (km/h) per road segment."""
    span = _span(traffic, hours)
    if span is None:
        return {"start": None, "end": None, "step": None, "segments": []}
    start, end = span
    step = (end - start) / buckets
    segments = []
    for segment in sorted(traffic):
        points = list(traffic[segment])
        latest = max(points, key=lambda p: p.t)
        segments.append(
            {
                "id": segment,
                "flow": _bucketed(
                    ((p.t, p.vehicles_per_hour) for p in points), start, step, buckets
                ),
                "speed": _bucketed(((p.t, p.speed_kmh) for p in points), start, step, buckets),
                "latest": {
                    "t": latest.t,
                    "vehicles_per_hour": _round(latest.vehicles_per_hour, 0),
                    "speed_kmh": _round(latest.speed_kmh, 1),
                    "occupancy": _round(latest.occupancy, 3),
                },
            }
        )
    return {"start": start, "end": end, "step": step, "segments": segments}


def parking_occupancy(parking: Mapping[str, ParkingPoint]) -> list[dict[str, Any]]:
    return [
        {
            "id": facility,
            "t": p.t,
            "occupied": p.occupied,
            "capacity": p.capacity,
            "share": round(min(p.occupied / p.capacity, 1.0), 3),
        }
        for facility, p in sorted(parking.items())
    ]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# -- consent and access ---------------------------------------------------------------------------


def consent_counts(states: Mapping[str, int]) -> dict[str, int]:
    """Consents by state (:func:`gateway.dashboard.tally.consent_states`), every state named."""
    return {k: int(states.get(k, 0)) for k in ("active", "withdrawn", "other")}


def access_summary(tally: LogTally) -> dict[str, Any]:
    """The access panel as an operator sees it (:func:`public_summary` keeps its counts)."""
    return {
        "allow": tally.access_counts.get("allow", 0),
        "deny": tally.access_counts.get("deny", 0),
        "break_glass": tally.access_counts.get("break_glass", 0),
        "break_glass_reads": tally.break_glass_reads,
        "break_glass_alert": break_glass_alert(tally),
        "recent": [_decision(d) for d in reversed(tally.access)],
        "recent_withheld": False,
    }


def break_glass_alert(tally: LogTally) -> dict[str, Any] | None:
    """The access panel's alert while the log holds break-glass reads: every emergency read
    is for review (not a fault of the hub, so not in the network banner). For operators: it
    names the latest read (who read whose data, and why)."""
    latest = tally.latest_break_glass
    if latest is None:
        return None
    n = tally.break_glass_reads
    who = f"{latest.client} ({latest.org})" if latest.org else latest.client
    because = f" ({latest.reason})" if latest.reason else ""
    return {
        **_break_glass_count(n),
        "message": (
            f"{n} break-glass read{'s' * (n != 1)} to review; latest: {who} read"
            f" {latest.type or 'data'} of {latest.subject or 'a patient'} at {latest.at}" + because
        ),
        "latest": _decision(latest),
    }


def _break_glass_count(n: int) -> dict[str, Any]:
    return {
        "level": "warning",
        "code": "break_glass_reads",
        "message": f"{n} break-glass read{'s' * (n != 1)} to review (details for operators)",
        "count": n,
    }


def _decision(d: AccessDecision) -> dict[str, Any]:
    return {
        "index": d.index,
        "at": d.at,
        "client": d.client,
        "org": d.org,
        "pilot": d.pilot,
        "purpose": d.purpose,
        "type": d.type,
        "subject": d.subject,
        "decision": d.decision,
        "reason": d.reason,
        "break_glass": d.break_glass,
    }


#: What the public access panel keeps of the operators': counts, never a line.
PUBLIC_ACCESS_COUNTS = ("allow", "deny", "break_glass", "break_glass_reads")


def public_summary(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot for anyone who asks: the city's data and counts, no line about one
    person (no access decision, not even the latest break-glass read, whose alert keeps its
    count only). The access panel is rebuilt from the counts it names rather than pruned,
    so that a field added to the operators' panel stays theirs until it is made public."""
    access = snapshot["access"]
    public: dict[str, Any] = {k: access[k] for k in PUBLIC_ACCESS_COUNTS if k in access}
    alert = access.get("break_glass_alert")
    public["break_glass_alert"] = None if not alert else _break_glass_count(int(alert["count"]))
    public["recent"] = []
    public["recent_withheld"] = True
    return {**snapshot, "access": public}


# -- verification, checkpoint, alerts -------------------------------------------------------------


def verification_state(v: IncrementalVerifier, head_size: int | None) -> dict[str, Any]:
    if v.failure is not None:
        state = "failed"
    elif head_size is None or head_size == 0:
        state = "empty"
    elif v.verified_size < head_size:
        state = "catching_up"
    else:
        state = "verified"
    return {
        "state": state,
        "verified_size": v.verified_size,
        "leaves_checked": v.size,
        "checkpoints_checked": v.checkpoints,
        "failure": None
        if v.failure is None
        else {"index": v.failure.index, "what": v.failure.what},
    }


def checkpoint_state(sample: HubSample, head_since: float | None) -> dict[str, Any]:
    age = None if head_since is None else max(sample.at - head_since, 0.0)
    behind = sample.log_size - (sample.head_size or 0)
    unpersisted = (sample.head_size or 0) > sample.persisted_size
    old = age is not None and age > CHECKPOINT_MAX_AGE_S
    return {
        "size": sample.head_size,
        "root": None if sample.head_root is None else sample.head_root.hex(),
        "age_s": None if age is None else round(age, 1),
        "persisted_size": sample.persisted_size,
        "behind": behind,
        # Old but covering the whole log: nothing new to sign, not a fault.
        "idle": old and behind == 0 and not unpersisted,
        "stale": old and (behind > 0 or unpersisted),
    }


def alerts(
    sample: HubSample,
    checkpoint: Mapping[str, Any],
    verification: Mapping[str, Any],
    rejected: Mapping[str, Any],
) -> list[Alert]:
    """Everything an operator must look at now, worst first."""
    out: list[Alert] = []
    failure = verification.get("failure")
    if failure:
        out.append(
            Alert(
                "critical",
                "verification_failed",
                f"Log verification failed at entry {failure['index']}: {failure['what']}",
            )
        )
    if not sample.connected:
        out.append(Alert("critical", "broker_disconnected", "The hub is not connected to MQTT"))
    if not sample.healthy:
        out.append(Alert("critical", "commit_failed", "The last commit to the ledger failed"))
    if checkpoint.get("stale"):
        out.append(
            Alert(
                "warning",
                "checkpoint_stale",
                f"Latest checkpoint is {checkpoint['age_s']:.0f} s old"
                f" ({checkpoint['behind']} entries not covered)",
            )
        )
    if rejected["recent"] >= REJECT_SPIKE_MIN and rejected["share"] >= REJECT_SPIKE_SHARE:
        out.append(
            Alert(
                "warning",
                "rejections_spike",
                f"{rejected['recent']} records rejected in {rejected['window_s']:.0f} s"
                f" ({rejected['share']:.0%} of incoming)",
            )
        )
    if sample.draining:
        out.append(Alert("warning", "draining", "The hub is draining for shutdown"))
    return out


def status_of(found: Sequence[Alert]) -> str:
    if any(a.level == "critical" for a in found):
        return "critical"
    return "warning" if found else "ok"


def build_summary(
    *,
    origin: str,
    samples: Sequence[HubSample],
    tally: LogTally,
    verifier: IncrementalVerifier,
    head_since: float | None,
    witnesses: Mapping[str, Any] | None = None,
    suite: Suite = DEFAULT_SUITE,
) -> dict[str, Any]:
    """The whole snapshot (``samples`` oldest first, at least one); ``witnesses`` is the
    hub's witness status (``gateway.alliance.witnessing.Witnessing.status``), when it has
    a trust policy."""
    sample = samples[-1]
    now = sample.at
    checkpoint = checkpoint_state(sample, head_since)
    verification = verification_state(verifier, sample.head_size)
    rejected = rejections(*window(samples, REJECT_WINDOW_S))
    found = alerts(sample, checkpoint, verification, rejected)
    if witnesses is not None and not witnesses.get("quorum_met"):
        why = "; ".join(witnesses.get("why") or []) or "no round has met it yet"
        found.append(Alert("warning", "witness_quorum", f"Witness quorum not met: {why}"))
    per_pilot = record_rates(tally.per_second, now)
    return {
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "now": round(now, 3),
        "network": {"origin": origin, "suite": suite.name, "status": status_of(found)},
        "alerts": [{"level": a.level, "code": a.code, "message": a.message} for a in found],
        "ledger": {
            "size": sample.log_size,
            "kinds": dict(sorted(tally.kinds.items())),
            "records_by_pilot": dict(sorted(tally.records_by_pilot.items())),
            "unreadable": tally.unreadable,
        },
        "checkpoint": checkpoint,
        "verification": verification,
        "witnesses": dict(witnesses) if witnesses is not None else None,
        "rates": {
            "window_s": RATE_WINDOW_S,
            "per_pilot": per_pilot,
            "total": round(sum(per_pilot.values()), 2),
            "history": rate_history(tally.per_second, now),
        },
        "ingest": {
            "accepted": int(sample.accepted),
            "duplicates": int(sample.duplicates),
            "rejected": rejected,
            "commit_queue": sample.commit_queue,
            "receipt_queue": sample.receipt_queue,
            "receipts_dropped": int(sample.receipts_dropped),
            "commit_failures": int(sample.commit_failures),
            "commit_latency": commit_latency(*window(samples, COUNTER_WINDOW_S)),
        },
        "broker": {
            "connected": sample.connected,
            "connects": int(sample.mqtt_connects),
            "errors": int(sample.mqtt_errors),
        },
        "air_quality": air_quality_chart(tally.air),
        "traffic": traffic_chart(tally.traffic),
        "parking": parking_occupancy(tally.parking),
        "consents": consent_counts(tally.consents),
        "access": access_summary(tally),
    }
