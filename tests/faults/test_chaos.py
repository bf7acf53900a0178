"""The hostile world at once: several edge agents (``swiftchain edge`` processes) stream into
a hub (``swiftchain hub`` process) through a real Mosquitto while hospital and public
clients query it; the hub is killed with SIGKILL at seeded random moments, the broker is
restarted, agents are killed, and the ledger's disk fills up and is given room again.

After every round: every record fed so far is on the log exactly once (seqs 1..n per
source, each marker once), every outbox drains, and ``verify_ledger`` is green.

On each store, the full disk as tests/faults/world.py's ``Disk`` makes it: the SQLite
ledger file's ``max_page_count`` quota, or for PostgreSQL a tablespace on a small tmpfs in a
cluster of the test's own. Mounting that needs root: without, the PostgreSQL run uses a
database of the machine's server and leaves the full disk out (its hub meets a restarted
database in tests/faults/test_failover.py). PostgreSQL runs half the rounds by default, for the
suite's time (ten took four minutes on a loaded 2-core machine): the faults hit the same
intake, outboxes and de-duplication on either store, and what differs by store, a hub
reopening the log after a kill -9 (taking the lease, reading the tree back), each round
does twice over (the hub, then a front end). Throughout,
hospital and anonymous clients query the hub, and every answer must be the one its query
expects (200 with the consented patient's data, 403 with the refusal's reason, 401...):
anything else, a 500 or an expired token included, is a violation.

``SWIFTCHAIN_FAULT_ROUNDS`` (default 10) sets the rounds, ``SWIFTCHAIN_FAULT_PG_ROUNDS``
(default half as many) those on PostgreSQL; each round kills
the hub once, one of its front ends once (when it runs front ends: ``workers`` >= 1) and
an agent once; every other round restarts the broker.
``SWIFTCHAIN_FAULT_AGENTS`` (default 6) sets the agents, ``SWIFTCHAIN_FAULT_SEED`` the seed.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.access import HOSPITAL, Device, HospitalClient, consent_document, http
from tests.support.broker import Mosquitto
from tests.support.hub import ProcessHub

from .conftest import FaultTally
from .world import (
    PER_FILE,
    PILOT,
    SETTLE_S,
    TYPE,
    Disk,
    Feed,
    check_log,
    metric,
    settle,
    streaming_world,
    wait_for,
)

ROUNDS = int(os.environ.get("SWIFTCHAIN_FAULT_ROUNDS", "10"))
PG_ROUNDS = int(os.environ.get("SWIFTCHAIN_FAULT_PG_ROUNDS", str(max(1, ROUNDS // 2))))
AGENTS = int(os.environ.get("SWIFTCHAIN_FAULT_AGENTS", "6"))
SEED = int(os.environ.get("SWIFTCHAIN_FAULT_SEED", "20261129"))
#: Files per agent per round.
FILES = 4
#: The hospital's patients in its own pilot (chronic-care, which holds FHIR data): one
#: whose consent lets the hospital read, one who withdrew (the records stay, unreadable),
#: one who never consented.
CONSENTED, WITHDRAWN, NEVER = "pt-fault-consented", "pt-fault-withdrawn", "pt-fault-never"
CONSENTED_RECORDS = 3
#: Access tokens live this long (the hub's setting); the queries take a new one at half.
TOKEN_LIFETIME_S = 60


@dataclass(frozen=True)
class Expected:
    """What one kind of query must answer: a status, and what the body must show."""

    what: str
    status: int
    check: Callable[[Any], str | None]
    #: Audited reads write an ``access`` entry first: on a full disk they are refused (503).
    audited: bool = True


def _bundle_of(subject: str, total: int) -> Callable[[Any], str | None]:
    def check(body: Any) -> str | None:
        entries = body.get("entry", []) if isinstance(body, dict) else []
        subjects = {e["resource"]["subject"]["reference"] for e in entries}
        if body.get("total") != total or subjects != {f"Patient/{subject}"}:
            return f"expected {total} records of {subject}: {str(body)[:300]}"
        return None

    return check


def _refused(reason: str) -> Callable[[Any], str | None]:
    def check(body: Any) -> str | None:
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            codes = [c["code"] for c in body["issue"][0]["details"]["coding"]]
        else:
            codes = [body.get("error")] if isinstance(body, dict) else []
        return None if reason in codes else f"expected reason {reason}: {str(body)[:300]}"

    return check


def _no_bodies(body: Any) -> str | None:
    for entry in body.get("entries", []):
        leaf = str(entry)
        if "'payload'" in leaf or "'salt'" in leaf or "occupied" in leaf:
            return f"a body on the public ledger: {leaf[:300]}"
    return None


def _anything(body: Any) -> str | None:
    return None


def _search(subject: str) -> str:
    return "/fhir/Observation?" + urllib.parse.urlencode({"subject": f"Patient/{subject}"})


#: The queries, in turn: (path, who asks, what it must answer).
QUERIES: list[tuple[str, str, Expected]] = [
    (
        _search(CONSENTED),
        "hospital",
        Expected("consented patient", 200, _bundle_of(CONSENTED, CONSENTED_RECORDS)),
    ),
    (
        _search(WITHDRAWN),
        "hospital",
        Expected("withdrawn consent", 403, _refused("consent_inactive")),
    ),
    (_search(NEVER), "hospital", Expected("no consent", 403, _refused("consent_missing"))),
    (
        f"/api/v1/records?pilot={PILOT}&type={TYPE}",
        "hospital",
        Expected("another pilot's records", 403, _refused("wrong_pilot")),
    ),
    (_search(CONSENTED), "anonymous", Expected("no token", 401, _anything, audited=False)),
    (_search(CONSENTED), "forged", Expected("a forged token", 401, _anything, audited=False)),
    (
        "/api/v1/ledger/entries?start=0&end=50",
        "anonymous",
        Expected("the public ledger", 200, _no_bodies, audited=False),
    ),
]


class Queries:
    """Hospital and anonymous clients reading the hub while it is being hurt, in a thread.

    A query either fails to connect (the hub is down: fine) or answers exactly what its
    kind expects; while the disk is full, audited reads may also be refused with 503
    ``storage_unavailable``. The hospital's token is renewed at half its lifetime.
    """

    def __init__(self, hub: ProcessHub, client: HospitalClient) -> None:
        self.hub, self.client = hub, client
        self.token, self.token_at = client.token(), time.monotonic()
        self.count = 0
        self.by_kind: dict[str, int] = {}
        self.violations: list[str] = []
        self.disk_full = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-queries", daemon=True)

    def __enter__(self) -> Queries:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        # Bounded: at most this many queries, however long the faults take.
        for i in range(100_000):
            if self._stop.is_set():
                return
            try:
                self._renew_token()
                self._one(*QUERIES[i % len(QUERIES)])
            except (urllib.error.URLError, ConnectionError, OSError, TimeoutError):
                time.sleep(0.1)  # the hub is down; that refuses everything, which is fine
            time.sleep(0.02)

    def _renew_token(self) -> None:
        if time.monotonic() - self.token_at < TOKEN_LIFETIME_S / 2:
            return
        status, body = self.client.token_request(scope="system/Observation.rs")
        if status == 200:
            self.token, self.token_at = str(body["access_token"]), time.monotonic()
        elif not (status == 503 and self.disk_full):
            self.violations.append(f"token request answered {status}: {str(body)[:300]}")

    def _one(self, path: str, who: str, expected: Expected) -> None:
        url = self.hub.http_url + path
        if who == "hospital":
            status, _, body = self.client.call("GET", path, self.token)
        elif who == "forged":
            status, _, body = http("GET", url, headers={"Authorization": "Bearer x.y.z"})
        else:
            status, _, body = http("GET", url)
        self.count += 1
        self.by_kind[expected.what] = self.by_kind.get(expected.what, 0) + 1
        if expected.audited and self.disk_full and status == 503:
            problem = _refused("storage_unavailable")(body)
        elif status != expected.status:
            problem = f"answered {status}, not {expected.status}: {str(body)[:300]}"
        else:
            problem = expected.check(body)
        if problem is not None:
            self.violations.append(f"{expected.what} ({path}): {problem}")


def seed_patients(hub: ProcessHub) -> HospitalClient:
    """The hospital, its patients' consents and their device readings (over MQTT)."""
    hospital = HospitalClient(hub, "fault-ehr", HOSPITAL).register()
    token = hospital.token()
    device = Device(hub)
    for consent_id, subject, records in (
        ("c-fault-1", CONSENTED, CONSENTED_RECORDS),
        ("c-fault-2", WITHDRAWN, 2),
    ):
        # The Consent names the home device: only then may its readings be about the patient.
        document = consent_document(consent_id, subject, sources=[device.source])
        status, _, body = hospital.call("POST", "/fhir/Consent", token, body=document)
        assert status == 201, body
        receipts = asyncio.run(device.publish(subject, consent_id, records))
        assert [r["status"] for r in receipts] == ["accepted"] * records
    # Withdrawn without erasure: the records stay on the log, and must not be read.
    status, _, body = hospital.call("POST", "/fhir/Consent/c-fault-2/$withdraw", token)
    assert status == 200, body
    return hospital


@pytest.fixture
def world(tmp_path: Path, disk_if_any: Disk) -> Iterator[tuple[Mosquitto, ProcessHub, list[Feed]]]:
    with streaming_world(
        tmp_path, AGENTS, access_token_lifetime_s=TOKEN_LIFETIME_S, **disk_if_any.settings
    ) as world:
        yield world


def wait_for_fronts(hub: ProcessHub) -> list[int]:
    """The hub's front-end pids once all of them run (none: the hub is one process)."""
    want = hub.front_ends
    if not want:
        return []
    wait_for(lambda: len(hub.children("front")) == want, SETTLE_S, "every front end running")
    return hub.children("front")


def not_ready_because(hub: ProcessHub) -> str | None:
    """Why ``/readyz`` says the hub is not ready; None when ready or not answering (a front
    end restarting: the caller waits on)."""
    try:
        status, body = hub.request("GET", "/readyz")
    except OSError:  # urllib's URLError, a reset connection
        return None
    return str(body["detail"]) if status == 503 else None


def test_agents_hub_broker_and_disk_fail_and_nothing_is_lost(
    world: tuple[Mosquitto, ProcessHub, list[Feed]], disk_if_any: Disk, tally: FaultTally
) -> None:
    broker, hub, feeds = world
    disk = disk_if_any
    rounds = PG_ROUNDS if disk.on_postgres else ROUNDS
    rng = random.Random(SEED)
    hospital = seed_patients(hub)
    distinct = [0]

    def settled(after: str) -> None:
        settle(feeds, after)
        checked = check_log(hub, feeds)
        tally.records_checked += checked
        distinct[0] = checked

    with Queries(hub, hospital) as queries:
        for round_no in range(rounds):
            for feed in feeds:
                feed.feed(FILES)
            # The hub dies with records in flight, at a seeded random moment.
            time.sleep(rng.uniform(0.2, 1.5))
            hub.kill()
            tally.fault("hub kill -9")
            time.sleep(rng.uniform(0.0, 1.0))
            hub.start()
            # With front ends: one of them dies mid-stream (its supervisor starts another).
            fronts = wait_for_fronts(hub)
            if fronts:
                for feed in feeds:
                    feed.feed(1)
                time.sleep(rng.uniform(0.1, 1.0))
                os.kill(rng.choice(fronts), signal.SIGKILL)
                tally.fault("front end kill -9")
            # An agent dies mid-stream.
            for feed in feeds:
                feed.feed(1)
            victim = rng.choice(feeds)
            time.sleep(rng.uniform(0.1, 1.0))
            victim.agent.kill()
            tally.fault("agent kill -9")
            victim.agent.start()
            if round_no % 2 == 0:
                for feed in feeds:
                    feed.feed(1)
                time.sleep(rng.uniform(0.1, 1.0))
                broker.stop()
                tally.fault("broker restart")
                time.sleep(rng.uniform(0.2, 1.0))
                broker.start()
            settled(f"after round {round_no + 1}")

        if disk.can_fill:
            fill_the_disk(hub, disk, feeds, queries, tally)
            settled("after the disk quota was raised")
    tally.distinct_records += distinct[0]
    tally.queries += queries.count
    tally.query_violations += len(queries.violations)
    assert not queries.violations, queries.violations[:3]
    # Every kind of query was asked, many times over.
    assert set(queries.by_kind) == {expected.what for _, _, expected in QUERIES}
    per_round = FILES + 1 + (1 if hub.front_ends else 0)
    assert sum(f.fed for f in feeds) == AGENTS * PER_FILE * (
        rounds * per_round + (rounds + 1) // 2 + (FILES if disk.can_fill else 0)
    )


def fill_the_disk(
    hub: ProcessHub, disk: Disk, feeds: list[Feed], queries: Queries, tally: FaultTally
) -> None:
    """The ledger's disk fills while the agents stream, the hub restarts on it, and the
    operator raises the quota and restarts it (the agents then deliver what was held)."""
    # The disk fills: room for a few pages more than the ledger holds now.
    hub.kill()
    disk.fill(hub, spare_pages=8)
    queries.disk_full = True
    hub.start()
    tally.fault("ledger disk full")
    for feed in feeds:
        feed.feed(FILES)
    wait_for(
        lambda: metric(hub, "swiftchain_commit_failures_total") > 0,
        SETTLE_S,
        "a commit failing on the full disk",
    )
    # Full: nothing more is acknowledged, so the outboxes hold on to the records.
    time.sleep(1.0)
    assert not all(f.settled() for f in feeds)
    # Restarted on the full disk with the agents resending: it comes up, serves, and
    # says why it is not ready.
    hub.kill()
    hub.start(wait=False)
    hub.wait_listening()
    wait_for(
        lambda: "cannot be written" in (not_ready_because(hub) or ""),
        SETTLE_S,
        "/readyz saying the ledger cannot be written",
    )
    assert hub.get_text("/api/v1/ledger/checkpoint").startswith("test.swiftchain/ledger")
    # Recover: raise the quota and restart the hub, as an operator would.
    hub.kill()
    disk.clear(hub)
    hub.start()
    queries.disk_full = False
