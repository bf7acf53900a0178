"""Consent-gated FHIR search benchmark: ``--clients`` concurrent hospital clients search
``GET /fhir/Observation?subject=...&_count=20`` on a hub (a real ``swiftchain hub``
process) whose ledger holds ``--records`` signed records of ``--subjects`` patients, each
with an active Consent. Every search is decided (policy + consent) and its ``access`` entry
is committed durably (synchronous=FULL group commit) before the Bundle leaves.

    .venv/bin/python -m bench.query --records 1000000 --clients 50 --seconds 15

The ledger is built directly with the store API (signed records, consent entries, Consent
resources in the access file) and cached under bench/out/; later runs reuse it.
Prints latency p50/p99, searches/s, hub CPU per search and the log growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.figures import write_rows
from bench.ingest import cpu_seconds
from gateway.access.consents import consent_bytes
from gateway.access.db import AccessDb
from ledger.canonical import canonical_json
from ledger.entries import ConsentEntry, RegistryEntry
from ledger.envelope import seal, utc_now
from ledger.keys import generate_key, key_id, public_key_b64, write_key_pair
from ledger.store import LedgerWriter, NewEntry, RecordColumns
from pilots import make_consent
from tests.support.access import HOSPITAL, PILOT, HospitalClient
from tests.support.broker import Mosquitto
from tests.support.hub import process_hub

OUT = Path(__file__).resolve().parent / "out"
ORIGIN = "bench.swiftchain/ledger"
SOURCE = "home-bp"


def _subject(i: int) -> str:
    return f"pt-{i:08d}"


def _chunk(args: tuple[bytes, int, int, int]) -> list[tuple[Any, ...]]:
    """Seal records [start, end) in a worker process; rows for NewEntry."""
    raw_key, start, end, subjects = args
    from ledger.keys import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(raw_key)
    rows = []
    for n in range(start, end):
        subject = _subject(n % subjects)
        minute = n // subjects
        when = f"2026-{1 + minute // 40000 % 12:02d}-01T00:00:00Z"
        when = datetime.fromtimestamp(1767225600 + n, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        payload = {
            "resourceType": "Observation",
            "id": f"obs-{n}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": f"Patient/{subject}"},
            "effectiveDateTime": when,
            "valueQuantity": {"value": 110 + n % 50, "unit": "mm[Hg]"},
        }
        r = seal(
            pilot=PILOT,
            source=SOURCE,
            seq=n + 1,
            type="fhir.Observation",
            payload=payload,
            signing_key=key,
            subject=subject,
            consent=f"c-{subject}",
            observed_at=when,
        )
        h = r.header
        rows.append(
            (
                h.canonical(),
                r.sig,
                (
                    h.id,
                    h.pilot,
                    h.source,
                    h.seq,
                    h.type,
                    r.subject,
                    r.consent,
                    h.observed_at,
                    h.key,
                ),
                canonical_json(payload),
                r.body.salt,
                r.opening(),
            )
        )
    return rows


def build(directory: Path, records: int, subjects: int) -> None:
    """hub.key, ledger.db (registry, consents, records) and ledger.db.access."""
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    hub_key = write_key_pair(directory / "hub.key")
    from ledger.checkpoint import NoteSigner

    writer = LedgerWriter(directory / "ledger.db", origin=ORIGIN)
    writer.set_meta("log_key", NoteSigner(ORIGIN, hub_key).verifier.encode())
    source_key = generate_key()
    pub = source_key.public_key()
    now = utc_now()
    reg = [
        RegistryEntry(action="org.add", at=now, actor="bench", org="vitalink"),
        RegistryEntry(
            action="source.add",
            at=now,
            actor="bench",
            org="vitalink",
            pilot=PILOT,
            source=SOURCE,
            detail={"types": ["fhir.Observation"]},
        ),
        RegistryEntry(
            action="key.add",
            at=now,
            actor="bench",
            pilot=PILOT,
            source=SOURCE,
            key_id=key_id(pub),
            public_key=public_key_b64(pub),
            valid_from="2020-01-01T00:00:00Z",
        ),
    ]
    writer.append([NewEntry("registry", e.leaf()) for e in reg])
    db = AccessDb(directory / "ledger.db.access")
    consents = []
    for i in range(subjects):
        subject = _subject(i)
        consent = make_consent(
            consent_id=f"c-{subject}",
            subject=subject,
            recorded_at=datetime.now(UTC),
            actors=[HOSPITAL],
            purposes=["TREAT", "CAREMGT"],
            data_types=["fhir.Observation"],
        )
        digest, stored = consent_bytes(consent)
        db.put_consent(digest, consent.id or "", PILOT, stored)
        entry = ConsentEntry(
            action="grant",
            at=now,
            actor="bench",
            pilot=PILOT,
            consent=consent.id or "",
            subject=subject,
            status="active",
            resource_hash=digest,
        )
        leaf, opening = entry.sealed()
        consents.append(NewEntry("consent", leaf, opening=opening))
    db.close()
    writer.append(consents)
    raw = source_key.private_bytes_raw()
    step = 10_000
    jobs = [(raw, s, min(s + step, records), subjects) for s in range(0, records, step)]
    with multiprocessing.Pool(max(1, os.cpu_count() or 1)) as pool:
        for done, rows in enumerate(pool.imap(_chunk, jobs), 1):
            writer.append(
                [
                    NewEntry(
                        "record",
                        leaf,
                        sig=sig,
                        record=RecordColumns(*cols),
                        payload=payload,
                        salt=salt,
                        opening=opening,
                    )
                    for leaf, sig, cols, payload, salt, opening in rows
                ]
            )
            if done % 10 == 0:
                print(f"  built {done * step:,} records", file=sys.stderr)
    writer.close()
    print(f"built {records:,} records in {time.perf_counter() - started:.0f} s", file=sys.stderr)


async def client_loop(
    url: str, token: str, subjects: int, until: float, latencies: list[float], errors: list[int]
) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "TREAT"}
    rng = random.Random()
    async with aiohttp.ClientSession(headers=headers) as session:
        while time.perf_counter() < until:
            subject = _subject(rng.randrange(subjects))
            query = urllib.parse.urlencode({"subject": f"Patient/{subject}", "_count": "20"})
            t0 = time.perf_counter()
            async with session.get(f"{url}/fhir/Observation?{query}") as resp:
                await resp.read()
                status = resp.status
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)


async def load(url: str, tokens: list[str], subjects: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[int] = []
    warm_until = time.perf_counter() + 2
    await asyncio.gather(*(client_loop(url, t, subjects, warm_until, [], []) for t in tokens))
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(client_loop(url, t, subjects, until, latencies, errors) for t in tokens))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {
        "searches": len(latencies),
        "per_s": len(latencies) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--batch-ms", type=float, default=2.0)
    parser.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = parser.parse_args()

    cached = OUT / f"query-{args.records}-{args.subjects}"
    if not (cached / "ledger.db").exists():
        shutil.rmtree(cached, ignore_errors=True)
        build(cached, args.records, args.subjects)
    work = OUT / "query-run"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(cached, work / "hub")
    (work / "mosquitto").mkdir()
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    hub = process_hub(
        work / "hub",
        broker.url,
        origin=ORIGIN,
        batch_max_ms=args.batch_ms,
        retention_interval_s=86400,
    )
    try:
        hub.start()
        client = HospitalClient(hub, "bench-ehr", HOSPITAL).register()
        tokens = [client.token("system/Observation.rs") for _ in range(args.clients)]
        assert hub.proc is not None
        size0 = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        cpu0 = cpu_seconds(hub.proc.pid)
        result = asyncio.run(load(hub.http_url, tokens, args.subjects, args.seconds))
        cpu = cpu_seconds(hub.proc.pid) - cpu0
        size1 = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
    finally:
        hub.stop()
        broker.stop()
    print(
        f"ledger: {args.records:,} records, {args.subjects:,} consented patients; "
        f"{args.clients} concurrent clients, {args.seconds:.0f} s, {os.cpu_count()} cores"
    )
    print(
        f"searches/s {result['per_s']:,.0f}  p50 {result['p50_ms']:.1f} ms  "
        f"p99 {result['p99_ms']:.1f} ms  errors {result['errors']}"
    )
    print(
        f"hub CPU {cpu / max(result['searches'], 1) * 1e6:,.0f} µs/search; "
        f"access entries committed during the run: {size1 - size0:,} "
        f"(searches incl. warm-up: every one logged)"
    )
    print(json.dumps(result))
    if args.json:
        on = f"{args.records:,} records, {args.clients} clients"
        write_rows(
            args.json,
            [
                (
                    f"consent-gated FHIR search p99 ({on})",
                    f"{result['p99_ms']:.1f} ms (p50 {result['p50_ms']:.1f} ms)",
                    "< 25 ms",
                    result["p99_ms"] < 25,
                ),
                (
                    f"consent-gated FHIR searches/s ({on}), audit entry committed",
                    f"{result['per_s']:,.0f}/s, {result['errors']} errors",
                    ">= 2,000/s",
                    result["per_s"] >= 2_000 and result["errors"] == 0,
                ),
            ],
        )


if __name__ == "__main__":
    main()
