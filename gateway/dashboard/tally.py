"""What the dashboard keeps from the log: one fold over new entries only.

The monitor reads the entries a new checkpoint covers (``LedgerReader.tail``) and folds them
into a ``LogTally``: counts by kind and pilot, records per commit second, the latest access
decisions (already redacted) and the city readings the charts draw. ``fold`` is the one
function here that changes state; it does no I/O and reads no clock, so a test feeds it rows
and reads the tally back.

A v2 ``access`` leaf (wire v2) names nobody: its subject and reason are in its opening, which
the tail carries from the hub's private store; the decision's line for operators is read from
there (:func:`ledger.sealed.opened`), and a v1 leaf of an older log is read as it is. Consent
states are not folded: a v2 ``consent`` leaf has no Consent id in the open, and a Consent
withdrawn with erasure loses the openings of all its entries, so the monitor recounts them
from the log's consent leaves with their openings (:func:`consent_states`) whenever a consent
or erasure entry arrives, and takes whom and why out of the lines of access decisions whose
openings an erasure took away (:func:`forget_lines`).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from ledger.errors import InvalidEnvelope
from ledger.queries import TailEntry
from ledger.sealed import PERSON, Opening, opened
from ledger.suite import DEFAULT_SUITE, Suite

AIR_QUALITY = "city.air-quality"
TRAFFIC_FLOW = "city.traffic-flow"
PARKING = "city.parking"
#: The non-personal data types whose bodies the charts read (never a personal body).
CITY_TYPES: tuple[str, ...] = (AIR_QUALITY, TRAFFIC_FLOW, PARKING)
#: Entry kinds after which the consent counts are taken again (a withdrawal with erasure
#: forgets the openings of the Consent's earlier entries).
CONSENT_KINDS = frozenset({"consent", "erasure"})

#: Seconds of per-pilot commit counts kept (the rate chart's span and a little more).
RATE_HISTORY_S = 180
#: Access decisions kept for the "recent" table.
RECENT_ACCESS = 40
#: Readings kept per station or road segment (hours of data at one-minute intervals).
POINTS_PER_SERIES = 1500
#: Characters of a pseudonym (or any long opaque token) the page ever sees.
SHOWN_PREFIX = 6

P = TypeVar("P")

_LONG_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")
#: A reason code (``consent_inactive``): letters and underscores, never a hex pseudonym.
_REASON_CODE = re.compile(r"^[a-z]+(?:_[a-z]+)+$")


@dataclass(frozen=True)
class AccessDecision:
    """An ``access`` entry as an operator's view shows it: no subject in full, no request
    text. Never in the public snapshot (only its counts are)."""

    index: int
    at: str
    client: str
    org: str | None
    pilot: str | None
    purpose: str | None
    type: str | None
    subject: str | None
    decision: str
    reason: str
    break_glass: bool
    sealed: bool = False
    """A v2 leaf: whom and why came from its opening (which an erasure takes away)."""


@dataclass(frozen=True)
class AirPoint:
    t: float
    pm25: float | None
    no2: float | None
    pm10: float | None = None
    o3: float | None = None


@dataclass(frozen=True)
class TrafficPoint:
    t: float
    vehicles_per_hour: float | None
    speed_kmh: float | None
    occupancy: float | None = None


@dataclass(frozen=True)
class ParkingPoint:
    t: float
    occupied: int
    capacity: int


@dataclass
class LogTally:
    suite: Suite = DEFAULT_SUITE
    """The log's crypto suite, whose hash an opening is checked against its leaf in."""
    size: int = 0
    """Entries folded so far (the next index expected)."""
    kinds: Counter[str] = field(default_factory=Counter)
    records_by_pilot: Counter[str] = field(default_factory=Counter)
    per_second: dict[int, Counter[str]] = field(default_factory=dict)
    """Commit second (Unix time) -> records committed in it, by pilot."""
    consents: Counter[str] = field(default_factory=Counter)
    """Consents by state: ``active``, ``withdrawn`` or ``other`` (:func:`consent_states`)."""
    consents_stale: bool = False
    """A consent or erasure entry was folded since the consents were last counted."""
    access: deque[AccessDecision] = field(default_factory=lambda: deque(maxlen=RECENT_ACCESS))
    access_counts: Counter[str] = field(default_factory=Counter)
    break_glass_reads: int = 0
    """Break-glass (ETREAT) reads allowed: each one is for review."""
    latest_break_glass: AccessDecision | None = None
    air: dict[str, deque[AirPoint]] = field(default_factory=dict)
    traffic: dict[str, deque[TrafficPoint]] = field(default_factory=dict)
    parking: dict[str, ParkingPoint] = field(default_factory=dict)
    last_commit_at: float | None = None
    """Commit time of the newest entry folded (the sequencer signs right after a commit)."""
    unreadable: int = 0
    """Leaves or bodies that were not the JSON their kind promises (shown, never fatal)."""


# -- small tolerant readers ------------------------------------------------------------------


def redact(text: str | None) -> str | None:
    """Cut every long opaque token (a pseudonym, a consent hash) to a short prefix."""
    if text is None:
        return None
    return _LONG_TOKEN.sub(lambda m: m.group(0)[:SHOWN_PREFIX] + "…", text)


def _reason(text: str | None) -> str:
    """A decision's reason: the hub's codes (``break_glass_override``) as they are, so the
    break-glass alert can say which kind of read it was; any other text redacted."""
    if text is not None and _REASON_CODE.match(text):
        return text
    return redact(text) or ""


def shorten(pseudonym: str | None) -> str | None:
    """A pseudonym as the page shows it: its first few characters only, whatever its length."""
    if not pseudonym:
        return None
    return pseudonym[:SHOWN_PREFIX] + "…"


def _number(value: Any) -> float | None:
    """A finite number, or None for anything else (bools, text, NaN, missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any, limit: int = 128) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def epoch(text: str | None) -> float | None:
    """RFC 3339 text as Unix seconds; None when it is not a time with an offset."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.timestamp()


def _opening(raw: bytes | None) -> Opening | None:
    if raw is None:
        return None
    try:
        return Opening.decode(raw)
    except InvalidEnvelope:
        return None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- the fold ----------------------------------------------------------------------------------


def fold(tally: LogTally, rows: list[TailEntry]) -> None:
    """Add ``rows`` (consecutive, in index order) to ``tally``."""
    for row in rows:
        tally.size = row.index + 1
        tally.kinds[row.kind] += 1
        tally.last_commit_at = row.created_at
        if row.kind == "record":
            _record(tally, row)
        elif row.kind == "access":
            _access(tally, row)
        elif row.kind == "consent" and _json_object(row.leaf) is None:
            tally.unreadable += 1
        if row.kind in CONSENT_KINDS:
            tally.consents_stale = True
    if tally.per_second:
        oldest = max(tally.per_second) - RATE_HISTORY_S
        for second in [s for s in tally.per_second if s < oldest]:
            del tally.per_second[second]


def _record(tally: LogTally, row: TailEntry) -> None:
    pilot = row.pilot or "?"
    tally.records_by_pilot[pilot] += 1
    tally.per_second.setdefault(int(row.created_at), Counter())[pilot] += 1
    if row.payload is None or row.type not in CITY_TYPES:
        return
    payload = _json_object(row.payload)
    t = epoch(row.observed_at) or (epoch(payload.get("observed_at")) if payload else None)
    if payload is None or t is None:
        tally.unreadable += 1
        return
    if row.type == AIR_QUALITY:
        station = _text(payload.get("station")) or row.source or "?"
        point = AirPoint(
            t,
            _number(payload.get("pm25")),
            _number(payload.get("no2")),
            _number(payload.get("pm10")),
            _number(payload.get("o3")),
        )
        if point.pm25 is not None or point.no2 is not None:
            _series(tally.air, station).append(point)
    elif row.type == TRAFFIC_FLOW:
        segment = _text(payload.get("detector")) or row.source or "?"
        vehicles = _number(payload.get("vehicles"))
        interval = _number(payload.get("interval_s"))
        vph = vehicles * 3600 / interval if vehicles is not None and interval else None
        speed = _number(payload.get("mean_speed_kmh"))
        if vph is not None or speed is not None:
            occupancy = _number(payload.get("occupancy"))
            _series(tally.traffic, segment).append(TrafficPoint(t, vph, speed, occupancy))
    else:
        facility = _text(payload.get("facility")) or row.source or "?"
        occupied, capacity = _number(payload.get("occupied")), _number(payload.get("capacity"))
        if occupied is None or capacity is None or capacity <= 0:
            return
        latest = tally.parking.get(facility)
        if latest is None or t >= latest.t:
            tally.parking[facility] = ParkingPoint(t, int(occupied), int(capacity))


def _series(table: dict[str, deque[P]], key: str) -> deque[P]:
    series = table.get(key)
    if series is None:
        series = table[key] = deque(maxlen=POINTS_PER_SERIES)
    return series


def consent_states(
    leaves: Iterable[tuple[int, bytes]],
    openings: Mapping[int, Opening],
    suite: Suite = DEFAULT_SUITE,
) -> Counter[str]:
    """Consents by state (``active``, ``withdrawn``, ``other``) from every consent leaf and
    the openings the hub holds of them (a v1 leaf is read as it is, a v2 leaf through its
    opening). A Consent's latest entry decides its state; unreadable leaves count nothing.

    A v2 leaf whose opening is gone belongs to a Consent withdrawn with erasure (the only
    way the hub takes a consent entry's opening away: it keeps it blinded, which only the
    person's pseudonym opens): its entries cannot be told apart from
    another's any more, so each such withdrawal counts one withdrawn Consent and its grants
    and updates count nothing. A Consent whose withdrawal is still opened is counted by its
    id as any other, whatever became of its earlier entries' openings."""
    latest: dict[tuple[str, str], str] = {}
    forgotten = 0
    for index, raw in leaves:
        leaf = _json_object(raw)
        if leaf is None:
            continue
        sealed = PERSON in leaf
        view = opened(leaf, openings.get(index), suite)
        consent = _text(view.get("consent"))
        if consent is not None:
            latest[(_text(view.get("pilot")) or "", consent)] = _consent_state(view)
        elif sealed and view.get("action") == "withdraw":
            forgotten += 1
    counts: Counter[str] = Counter(latest.values())
    if forgotten:
        counts["withdrawn"] += forgotten
    return counts


def _consent_state(leaf: Mapping[str, Any]) -> str:
    if leaf.get("action") == "withdraw" or leaf.get("status") in ("inactive", "withdrawn"):
        return "withdrawn"
    if leaf.get("status") == "active":
        return "active"
    return "other"  # refused, proposed, entered in error


def _access(tally: LogTally, row: TailEntry) -> None:
    sealed = _json_object(row.leaf)
    if sealed is None:
        tally.unreadable += 1
        return
    # The decision's counts are in the open; who it was about and why only in its opening
    # (none held: a v1 leaf, or one about a person since erased; the line says neither).
    leaf = opened(sealed, _opening(row.opening), tally.suite)
    decision = "allow" if leaf.get("decision") == "allow" else "deny"
    break_glass = leaf.get("break_glass") is True
    tally.access_counts[decision] += 1
    if break_glass:
        tally.access_counts["break_glass"] += 1
    shown = AccessDecision(
        index=row.index,
        at=_text(leaf.get("at"), 40) or "",
        client=redact(_text(leaf.get("client"), 64)) or "?",
        org=_text(leaf.get("org"), 64),
        pilot=_text(leaf.get("pilot"), 64),
        purpose=_text(leaf.get("purpose"), 32),
        type=_text(leaf.get("type"), 64),
        subject=shorten(_text(leaf.get("subject"))),
        decision=decision,
        reason=_reason(_text(leaf.get("reason"), 120)),
        break_glass=break_glass,
        sealed=PERSON in sealed,
    )
    tally.access.append(shown)
    if break_glass and decision == "allow":
        tally.break_glass_reads += 1
        tally.latest_break_glass = shown


def forget_lines(tally: LogTally, held: Collection[int]) -> None:
    """Take whom and why out of the lines of v2 access entries whose openings are no longer
    ``held`` (the person was erased since: their openings are blinded)."""

    def forgotten(d: AccessDecision) -> AccessDecision:
        if not d.sealed or d.index in held or (d.subject is None and not d.reason):
            return d
        return replace(d, subject=None, reason="")

    tally.access = deque((forgotten(d) for d in tally.access), maxlen=tally.access.maxlen)
    if tally.latest_break_glass is not None:
        tally.latest_break_glass = forgotten(tally.latest_break_glass)
