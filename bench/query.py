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
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from bench import pg_server
from bench.cpu import tree_cpu_seconds
from bench.figures import Figure, ratio_text, write_figures
from gateway.access.consents import consent_bytes
from gateway.access.db import PG_SCHEMA_NAME as ACCESS_SCHEMA
from gateway.access.db import AccessDb
from ledger.canonical import canonical_json
from ledger.entries import ConsentEntry, RegistryEntry
from ledger.envelope import seal, utc_now
from ledger.keys import generate_key, key_id, public_key_b64, write_key_pair
from ledger.store import LedgerWriter, NewEntry, RecordColumns
from pilots import make_consent
from tests.support.access import HOSPITAL, PILOT, HospitalClient
from tests.support.broker import Mosquitto
from tests.support.hub import SWIFTCHAIN, process_hub

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
    if not Path(binary).exists():
        raise SystemExit("wrk not found: install it (Debian: apt-get install wrk)")
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


def cached_ledger(records: int, subjects: int) -> Path:
    """The folder of the SQLite ledger of ``records`` records (built once, then reused)."""
    cached = OUT / f"query-{records}-{subjects}"
    if not (cached / "ledger.db").exists():
        # Built aside and renamed once whole: an interrupted build is never reused.
        building = cached.with_name(cached.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(cached, ignore_errors=True)
        build(building, records, subjects)
        building.rename(cached)
    return cached


#: Files of a cached ledger whose bytes name its PostgreSQL copy.
HASHED = ("ledger.db", "ledger.db.access")
PG_PREFIX = "swiftchain_bench_query_"


def ledger_digest(cached: Path) -> str:
    """SHA-256 of the cached ledger's files (about 1 s a GB)."""
    digest = hashlib.sha256()
    for name in HASHED:
        with open(cached / name, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def pg_template(server: str, cached: Path) -> tuple[str, dict[str, float]]:
    """The name of a PostgreSQL database holding a copy of the cached SQLite ledger (and its
    access store's Consent resources): made once by ``swiftchain ledger copy`` and kept on
    the server, named after the SQLite files' hash, so a rebuilt ledger gets a new copy.
    Each run is then a clone of it (``CREATE DATABASE ... TEMPLATE``), dropped after, and
    the copy stays as it was made. Seconds taken, by step."""
    took: dict[str, float] = {}
    started = time.perf_counter()
    name = PG_PREFIX + ledger_digest(cached)[:16]
    took["hash_s"] = time.perf_counter() - started
    if pg_server.database_exists(server, name):
        with psycopg.connect(server, autocommit=True) as admin:
            row = admin.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (name,),
            ).fetchone()
        made = re.search(r"in ([\d.]+) s", str(row[0] if row else ""))
        if made:
            took["copied_s"] = float(made.group(1))  # when it was made, by an earlier run
        return name, took
    # Made aside and renamed once whole: an interrupted copy is never reused.
    building = f"{name}_{os.getpid()}"
    url = pg_server.create_database(server, building)
    try:
        with tempfile.TemporaryDirectory(prefix="swiftchain-query-", dir=OUT) as tmp:
            # From a copy of the file: opening a SQLite ledger may touch it, and the cached
            # file's bytes are what name the copy.
            source = Path(tmp) / "ledger.db"
            shutil.copy2(cached / "ledger.db", source)
            started = time.perf_counter()
            proc = subprocess.run(
                [SWIFTCHAIN, "ledger", "copy", str(source), url, "--json"],
                capture_output=True,
                text=True,
                timeout=COPY_TIMEOUT_S,
            )
            took["copy_s"] = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"swiftchain ledger copy failed ({proc.returncode}): "
                               f"{(proc.stdout + proc.stderr)[-1500:]}")  # fmt: skip
        started = time.perf_counter()
        copy_consents(cached / "ledger.db.access", url)
        took["consents_s"] = time.perf_counter() - started
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                f'COMMENT ON DATABASE "{building}" IS '
                f"'swiftchain bench/query.py: {cached.name} copied by swiftchain ledger copy"
                f" in {took['copy_s']:.1f} s'"
            )
            admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    except BaseException:
        pg_server.drop_database(server, building)
        raise
    print(
        f"PostgreSQL copy of {cached.name} made: database {name} (ledger copy "
        f"{took['copy_s']:.0f} s, consents {took['consents_s']:.1f} s); kept for later runs",
        file=sys.stderr,
    )
    return name, took


def copy_consents(access_file: Path, url: str) -> None:
    """The Consent resources of a SQLite access store into the PostgreSQL one the hub opens
    beside a ledger at ``url`` (schema ``access`` of its database); ``swiftchain ledger
    copy`` moves the ledger alone."""
    AccessDb(url).close()  # its tables, as the hub makes them
    source = sqlite3.connect(f"file:{access_file}?mode=ro", uri=True)
    try:
        rows = source.execute(
            "SELECT hash, consent_id, pilot, resource, stored_at FROM consent_versions"
        ).fetchall()
    finally:
        source.close()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {ACCESS_SCHEMA}.consent_versions"
            " (hash, consent_id, pilot, resource, stored_at) VALUES (%s, %s, %s, %s, %s)",
            rows,
        )


#: Bound on one copy of a cached ledger into PostgreSQL.
COPY_TIMEOUT_S = 1800


def measure(
    args: argparse.Namespace,
    cached: Path,
    server: pg_server.Server | None = None,
    template: str | None = None,
    python_load: bool = True,
) -> dict[str, Any]:
    """One run: a hub on a copy of the cached ledger (the SQLite file, or with ``server``
    a clone of the PostgreSQL database ``template``), wrk, then the Python view."""
    work = OUT / "query-run"
    shutil.rmtree(work, ignore_errors=True)
    settings: dict[str, Any] = {"batch_max_ms": args.batch_ms, "retention_interval_s": 86400}
    if args.hub_workers is not None:
        settings["workers"] = args.hub_workers
    out: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    db_name = None
    if server is None:
        shutil.copytree(cached, work / "hub")
    else:
        (work / "hub").mkdir(parents=True)
        shutil.copy2(cached / "hub.key", work / "hub" / "hub.key")
        db_name = f"swiftchain_bench_query_run_{os.getpid()}"
        started = time.perf_counter()
        settings["ledger_url"] = pg_server.create_database(server.url, db_name, template)
        out["clone_s"] = time.perf_counter() - started
    db_url = settings.get("ledger_url")
    (work / "mosquitto").mkdir()
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    hub = process_hub(work / "hub", broker.url, origin=ORIGIN, **settings)
    try:
        hub.start()
        client = HospitalClient(hub, "bench-ehr", HOSPITAL).register()
        tokens = [client.token("system/Observation.rs") for _ in range(WRK_CONNECTIONS)]
        token_file = work / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        assert hub.proc is not None
        size0 = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        out["settled"] = dashboards_caught_up(hub)
        wrk(hub.http_url, token_file, args.subjects, 3)  # warm-up: caches, pages, JIT-free
        backends0 = pg_server.backends_cpu(db_url) if db_url else {}
        cpu0, _ = tree_cpu_seconds(hub.proc.pid)
        result = wrk(hub.http_url, token_file, args.subjects, args.seconds)
        cpu1, out["processes"] = tree_cpu_seconds(hub.proc.pid)
        backends = pg_server.backends_cpu(db_url) if db_url else {}
        out["load"] = os.getloadavg()[0]
        out["entries"] = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"] - size0
        if python_load:
            out["python"] = asyncio.run(
                load(hub.http_url, tokens[: args.clients], args.subjects, args.seconds)
            )
    finally:
        hub.stop()
        broker.stop()
        if server is not None and db_name is not None:
            pg_server.drop_database(server.url, db_name)
    searches = max(result["searches"], 1)
    out["wrk"] = result
    out["cpu_us"] = (cpu1 - cpu0) / searches * 1e6
    out["server_us"] = pg_server.backends_cpu_between(backends0, backends) / searches * 1e6
    out["backends"] = len(backends)
    return out


def print_run(args: argparse.Namespace, out: dict[str, Any]) -> None:
    result = out["wrk"]
    print(result["output"])
    print(
        f"ledger: {args.records:,} records, {args.subjects:,} consented patients; "
        f"wrk -t1 -c{WRK_CONNECTIONS}, {args.seconds:g} s, {os.cpu_count()} cores; measured"
        f" once every dashboard had re-verified the log ({out['settled']:.0f} s after start)"
    )
    print(
        f"wrk       searches/s {result['per_s']:,.0f}  p50 {result['p50_ms']:.1f} ms  "
        f"p99 {result['p99_ms']:.1f} ms  errors {result['errors']}"
    )
    print(
        f"hub CPU {out['cpu_us']:,.0f} µs/search ({out['processes']} hub processes); access "
        f"entries committed since start: {out['entries']:,} (warm-up and measured searches: "
        "every one logged)"
    )
    if out["backends"]:
        print(
            f"server CPU {out['server_us']:,.0f} µs/search ({out['backends']} PostgreSQL "
            f"backends); database cloned in {out['clone_s']:.1f} s"
        )
    python_view = out.get("python")
    if python_view is not None:
        print(
            f"python    searches/s {python_view['per_s']:,.0f}  "
            f"p50 {python_view['p50_ms']:.1f} ms  p99 {python_view['p99_ms']:.1f} ms  "
            f"errors {python_view['errors']} ({args.clients} aiohttp clients)"
        )
    print(f"load average {out['load']:.2f} (1 min, at the end of wrk)", flush=True)


def figures(args: argparse.Namespace, out: dict[str, Any], on: str = "") -> list[Figure]:
    """The rows of one run; ``on`` prefixes each measure (``[PostgreSQL] ``)."""
    result, cpu_us, processes = out["wrk"], out["cpu_us"], out["processes"]
    where = f"{args.records:,} records, wrk {WRK_CONNECTIONS} connections"
    rows = [
        Figure(
            f"consent-gated FHIR searches/s ({where}), access entry committed per search",
            f"{result['per_s']:,.0f}/s, {result['errors']} errors",
            value=result["per_s"] if result["errors"] == 0 else 0.0,
            unit="/s",
            reference="http.get_per_s",
            op=">=",
            bound=0.10,
        ),
        Figure(
            f"consent-gated FHIR search p99 ({where})",
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
    python_view = out.get("python")
    if python_view is not None:
        rows.append(
            Figure(
                f"consent-gated FHIR search, {args.clients} Python clients (second view)",
                f"{python_view['per_s']:,.0f}/s, p50 {python_view['p50_ms']:.1f} ms, "
                f"p99 {python_view['p99_ms']:.1f} ms, {python_view['errors']} errors",
            )
        )
    return [replace(r, measure=on + r.measure) for r in rows]


def store_figures(
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
    server: pg_server.Server,
    template: str,
    took: dict[str, float],
) -> list[Figure]:
    """Each figure on PostgreSQL beside SQLite, run by run, with ratios pg / sqlite."""
    pg, sq = runs["postgresql"], runs["sqlite"]
    on = (
        f"FHIR search on PostgreSQL beside SQLite ({args.records:,} records, wrk "
        f"{WRK_CONNECTIONS} connections, an access entry committed per search)"
    )

    def row(measure: str, value: Any, text: Any) -> Figure:
        pairs = zip(pg, sq, strict=True)
        ratios = [value(p) / value(q) if value(q) else float("inf") for p, q in pairs]
        return Figure(
            measure,
            " / ".join(text(r) for r in pg),
            target="report",
            value=sum(ratios) / len(ratios),
            unit="x SQLite",
            beside=" / ".join(text(r) for r in sq),
            ratio=ratio_text(ratios),
        )

    errors = sum(r["wrk"]["errors"] for r in pg + sq)
    rows = [
        row(
            f"{on}: searches/s",
            lambda r: r["wrk"]["per_s"],
            lambda r: f"{r['wrk']['per_s']:,.0f}/s, {r['wrk']['errors']} errors",
        ),
        row(
            f"{on}: p99",
            lambda r: r["wrk"]["p99_ms"],
            lambda r: f"{r['wrk']['p99_ms']:.1f} ms (p50 {r['wrk']['p50_ms']:.1f} ms)",
        ),
        row(
            f"{on}: hub CPU per search, all hub processes",
            lambda r: r["cpu_us"],
            lambda r: f"{r['cpu_us']:,.0f} us",
        ),
        row(
            f"{on}: hub + PostgreSQL backends' CPU per search (SQLite: the hub's alone)",
            lambda r: r["cpu_us"] + r["server_us"],
            lambda r: (
                f"{r['cpu_us'] + r['server_us']:,.0f} us (server {r['server_us']:,.0f} us)"
                if r["backends"]
                else f"{r['cpu_us']:,.0f} us"
            ),
        ),
        Figure(
            "FHIR search on PostgreSQL beside SQLite: errors (non-2xx, socket), every run",
            str(errors),
            value=errors,
            op="<=",
            bound=0,
        ),
    ]
    if "copy_s" in took:
        made = f"copied by `swiftchain ledger copy` in {took['copy_s']:.0f} s this run"
    else:
        when = f" in {took['copied_s']:.0f} s" if "copied_s" in took else ""
        made = f"reused (copied once by `swiftchain ledger copy`{when}, kept on the server)"
    clones = " / ".join(f"{r['clone_s']:.1f} s" for r in pg)
    loads = " / ".join(f"{q['load']:.1f}, {p['load']:.1f}" for q, p in zip(sq, pg, strict=True))
    rows.append(
        Figure(
            "FHIR search on PostgreSQL: the server and the ledger's copy",
            f"{server.describe()}, synchronous_commit=on (checked); database {template} "
            f"{made}, cloned for each run in {clones}; 1-min load average at the end of each "
            f"run (sqlite, pg): {loads} on {os.cpu_count()} cores",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10, help="of each measured run")
    parser.add_argument("--clients", type=int, default=50, help="Python clients (second view)")
    parser.add_argument("--no-python-load", action="store_true", help="wrk only")
    parser.add_argument("--batch-ms", type=float, default=2.0)
    parser.add_argument("--hub-workers", type=int, help="hub setting workers (default: hub's)")
    pg_server.add_store_options(parser, "the cached SQLite file, its PostgreSQL copy (wrk only)")
    parser.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = parser.parse_args()
    if args.store_rounds < 1:
        parser.error("--store-rounds must be at least 1")

    if args.store == "sqlite":
        cached = cached_ledger(args.records, args.subjects)
        out = measure(args, cached, python_load=not args.no_python_load)
        print_run(args, out)
        if args.json:
            write_figures(args.json, figures(args, out))
        return
    server = pg_server.server_or_skip(args.pg_url, args.json, "FHIR search on PostgreSQL")
    if server is None:
        return
    cached = cached_ledger(args.records, args.subjects)
    template, took = pg_template(server.url, cached)
    print(
        f"PostgreSQL copy of the ledger: database {template} "
        + ", ".join(f"{k} {v:.1f}" for k, v in took.items()),
        flush=True,
    )
    if args.store == "postgresql":
        out = measure(args, cached, server, template, python_load=not args.no_python_load)
        print_run(args, out)
        if args.json:
            write_figures(args.json, figures(args, out, on="[PostgreSQL] "))
        return
    runs: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": []}
    for round_ in range(1, args.store_rounds + 1):
        for store in ("sqlite", "postgresql"):
            print(f"== round {round_}, {store}", flush=True)
            on_pg = store == "postgresql"
            out = measure(
                args,
                cached,
                server if on_pg else None,
                template if on_pg else None,
                python_load=False,
            )
            print_run(args, out)
            runs[store].append(out)
    rows = store_figures(args, runs, server, template, took)
    print()
    for row in rows:
        print(row.measure)
        if row.beside:
            print(f"    PostgreSQL {row.result}\n    SQLite     {row.beside}")
            print(f"    ratio      {row.ratio}")
        else:
            print(f"    {row.result}")
    if args.json:
        write_figures(args.json, rows)


if __name__ == "__main__":
    main()
