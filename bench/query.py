"""Consent-gated FHIR search benchmark: ``GET /fhir/Observation?subject=...&_count=20`` on
a hub (a real ``swiftchain hub`` process) whose ledger holds ``--records`` signed records of
``--subjects`` patients, each with an active Consent. Every search is decided (policy +
consent) and its ``access`` entry is committed durably (synchronous=FULL group commit)
before the Bundle leaves.

    .venv/bin/python -m bench.query --records 1000000 --seconds 10 [--no-python-load]

The load: wrk (1 thread, 64 connections, as the reference's bench_http.py drives its
trivial GET) with bench/query.lua, a random patient per request and the hospital's bearer
tokens in turn; then, as a second view, ``--clients`` Python (aiohttp) clients. The
searches/s under wrk are read against the reference's trivial aiohttp GET/s (1 worker,
uvloop) by bench/report.py: target >= 0.10 of it, p99 <= 25 ms, no errors.

The ledger is built directly with the store API (signed records, consent entries, Consent
resources in the access file) and cached under bench/out/; later runs reuse it.
Prints searches/s, latency p50/p99, errors, hub CPU per search (the hub process and all
its descendants) and the log growth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.cpu import tree_cpu_seconds
from bench.figures import Figure, write_figures
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
LUA = Path(__file__).resolve().with_name("query.lua")
WRK_CONNECTIONS = 64
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


#: How long the hub's dashboards may take to fold and re-verify the cached log at start.
CATCH_UP_S = 300.0


def dashboards_caught_up(hub: Any) -> float:
    """Until the dashboard of every front end has re-verified the whole log (each folds it
    once at start: measured meanwhile, that work would count as the searches'); seconds
    waited. Each new connection may reach another front end (``Swiftchain-Front``)."""
    want = max(hub.front_ends, 1)
    started = time.monotonic()
    caught: set[str] = set()
    while len(caught) < want:
        if time.monotonic() - started > CATCH_UP_S:
            raise TimeoutError(f"dashboards {sorted(caught)} of {want} caught up in {CATCH_UP_S}s")
        request = urllib.request.Request(
            hub.http_url + "/api/v1/dashboard/summary",
            headers={"Authorization": f"Bearer {hub.admin_token}", "Connection": "close"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            summary = json.loads(resp.read())
            front = resp.headers.get("Swiftchain-Front", "")
        if summary.get("verification", {}).get("state") == "verified":
            caught.add(front)
        else:
            time.sleep(0.5)
    return time.monotonic() - started


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


def _find(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in wrk's output; a clear error when wrk said otherwise."""
    found = re.search(pattern, text, re.M)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output: {text[-1500:]}")
    return found.group(1)


def _ms(text: str) -> float:
    """A wrk duration (``812.00us``, ``3.27ms``, ``1.02s``) in milliseconds."""
    number = _find(r"^([\d.]+)(?:us|ms|s|m)$", text)
    unit = text[len(number) :]
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url: str, tokens: Path, subjects: int, seconds: float) -> dict[str, Any]:
    """One wrk run (-t1 -c64 --latency) with bench/query.lua; its figures."""
    binary = shutil.which("wrk") or "/usr/bin/wrk"
    cmd = [
        binary, "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "--latency", "-s", str(LUA),
        url, "--", str(tokens), str(subjects),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out[-1500:]}")
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests, requests/s, p50 and p99 (``--latency``) and errors from wrk's report; an
    error is a response neither 2xx nor 3xx, or a socket error (connect, read, write,
    timeout)."""
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "searches": int(_find(r"(\d+) requests in", out)),
        "per_s": float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        "p50_ms": _ms(_find(r"^\s+50%\s+(\S+)$", out)),
        "p99_ms": _ms(_find(r"^\s+99%\s+(\S+)$", out)),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(x) for x in socket.groups()) if socket else 0),
        "output": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10, help="of each measured run")
    parser.add_argument("--clients", type=int, default=50, help="Python clients (second view)")
    parser.add_argument("--no-python-load", action="store_true", help="wrk only")
    parser.add_argument("--batch-ms", type=float, default=2.0)
    parser.add_argument("--hub-workers", type=int, help="hub setting workers (default: hub's)")
    parser.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = parser.parse_args()

    cached = OUT / f"query-{args.records}-{args.subjects}"
    if not (cached / "ledger.db").exists():
        # Built aside and renamed once whole: an interrupted build is never reused.
        building = cached.with_name(cached.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(cached, ignore_errors=True)
        build(building, args.records, args.subjects)
        building.rename(cached)
    work = OUT / "query-run"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(cached, work / "hub")
    (work / "mosquitto").mkdir()
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    settings: dict[str, Any] = {"batch_max_ms": args.batch_ms, "retention_interval_s": 86400}
    if args.hub_workers is not None:
        settings["workers"] = args.hub_workers
    hub = process_hub(work / "hub", broker.url, origin=ORIGIN, **settings)
    python_view: dict[str, Any] | None = None
    try:
        hub.start()
        client = HospitalClient(hub, "bench-ehr", HOSPITAL).register()
        tokens = [client.token("system/Observation.rs") for _ in range(WRK_CONNECTIONS)]
        token_file = work / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        assert hub.proc is not None
        size0 = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        settled = dashboards_caught_up(hub)
        wrk(hub.http_url, token_file, args.subjects, 3)  # warm-up: caches, pages, JIT-free
        cpu0, _ = tree_cpu_seconds(hub.proc.pid)
        result = wrk(hub.http_url, token_file, args.subjects, args.seconds)
        cpu1, processes = tree_cpu_seconds(hub.proc.pid)
        size1 = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        if not args.no_python_load:
            python_view = asyncio.run(
                load(hub.http_url, tokens[: args.clients], args.subjects, args.seconds)
            )
    finally:
        hub.stop()
        broker.stop()
    cpu_us = (cpu1 - cpu0) / max(result["searches"], 1) * 1e6
    print(result["output"])
    print(
        f"ledger: {args.records:,} records, {args.subjects:,} consented patients; "
        f"wrk -t1 -c{WRK_CONNECTIONS}, {args.seconds:g} s, {os.cpu_count()} cores; measured"
        f" once every dashboard had re-verified the log ({settled:.0f} s after start)"
    )
    print(
        f"wrk       searches/s {result['per_s']:,.0f}  p50 {result['p50_ms']:.1f} ms  "
        f"p99 {result['p99_ms']:.1f} ms  errors {result['errors']}"
    )
    print(
        f"hub CPU {cpu_us:,.0f} µs/search ({processes} hub processes); access entries "
        f"committed since start: {size1 - size0:,} (warm-up and measured searches: every "
        "one logged)"
    )
    if python_view is not None:
        print(
            f"python    searches/s {python_view['per_s']:,.0f}  "
            f"p50 {python_view['p50_ms']:.1f} ms  p99 {python_view['p99_ms']:.1f} ms  "
            f"errors {python_view['errors']} ({args.clients} aiohttp clients)"
        )
    if args.json:
        on = f"{args.records:,} records, wrk {WRK_CONNECTIONS} connections"
        rows = [
            Figure(
                f"consent-gated FHIR searches/s ({on}), access entry committed per search",
                f"{result['per_s']:,.0f}/s, {result['errors']} errors",
                value=result["per_s"] if result["errors"] == 0 else 0.0,
                unit="/s",
                reference="http.get_per_s",
                op=">=",
                bound=0.10,
            ),
            Figure(
                f"consent-gated FHIR search p99 ({on})",
                f"{result['p99_ms']:.1f} ms (p50 {result['p50_ms']:.1f} ms)",
                value=result["p99_ms"],
                unit="ms",
                op="<=",
                bound=25,
            ),
            Figure(
                "consent-gated FHIR search: errors (non-2xx, socket)",
                str(result["errors"]),
                value=result["errors"],
                op="<=",
                bound=0,
            ),
            Figure(
                "consent-gated FHIR search: hub CPU per search, all hub processes",
                f"{cpu_us:,.0f} us ({processes} process{'es' if processes > 1 else ''})",
            ),
        ]
        if python_view is not None:
            rows.append(
                Figure(
                    f"consent-gated FHIR search, {args.clients} Python clients (second view)",
                    f"{python_view['per_s']:,.0f}/s, p50 {python_view['p50_ms']:.1f} ms, "
                    f"p99 {python_view['p99_ms']:.1f} ms, {python_view['errors']} errors",
                )
            )
        write_figures(args.json, rows)


if __name__ == "__main__":
    main()
