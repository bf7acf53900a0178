"""Soak: mixed ingest and queries against one hub for a long time (``make soak``, not CI).

    .venv/bin/python -m bench.soak [--minutes 30] [--rate 1000] [--publishers 4] [--readers 4]

A real Mosquitto and a real hub (``swiftchain hub`` in a process of its own). Publishers
seal and send city sensor records at ``--rate`` records/s in all, each awaiting its
receipts within a window; readers query the public ledger (checkpoint, entries, inclusion
proofs) and a registered hospital searches FHIR, all the time. Every ``--interval`` seconds
one line: records accepted/s, queries/s, receipt latency p99, hub RSS and CPU, errors.
At the end: throughput over time, memory growth (first vs last interval), every error,
and ``verify_ledger`` on the file. Exit status 1 if anything went wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.ingest import cpu_seconds
from ledger.envelope import seal, utc_now
from ledger.keys import load_private_key
from ledger.verify import verify_ledger
from tests.support.access import HOSPITAL, HospitalClient
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ProcessHub, process_hub

PILOT, TYPE = "soak-city", "city.air-quality"


@dataclass
class Window:
    """What happened in one reporting interval."""

    accepted: int = 0
    queries: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Soak:
    until: float
    window: Window = field(default_factory=Window)
    errors_total: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.window.errors.append(what)
        if len(self.errors_total) < 1000:  # bounded: the first thousand are plenty
            self.errors_total.append(what)


async def publish(soak: Soak, hub: ProcessHub, source: str, rate: float, window: int) -> None:
    key = load_private_key(hub.register_source(PILOT, source, [TYPE])[0])
    topic = f"swiftchain/v1/{PILOT}/{source}/records"
    sent_at: dict[str, float] = {}
    credit = asyncio.Semaphore(window)
    seq = 0
    async with MqttPeer(hub.mqtt_url, receipts=topic.replace("/records", "/receipts")) as peer:
        seen = 0

        async def collect() -> None:
            nonlocal seen
            while time.monotonic() < soak.until + 30:
                try:
                    await peer.wait_for(seen + 1, wait_s=5)
                except TimeoutError:
                    if not sent_at and time.monotonic() > soak.until:
                        return
                    continue
                for _, r in peer.receipts[seen:]:
                    started = sent_at.pop(r["id"], None)
                    if r["status"] == "accepted" and started is not None:
                        soak.window.accepted += 1
                        soak.window.latencies.append(time.perf_counter() - started)
                        credit.release()
                    elif r["status"] != "duplicate":
                        soak.error(f"{source}: {r['status']} {r.get('reason')}")
                        credit.release()
                seen = len(peer.receipts)

        collector = asyncio.create_task(collect())
        interval = 1 / rate
        next_at = time.monotonic()
        while time.monotonic() < soak.until:
            await credit.acquire()
            seq += 1
            record = seal(
                pilot=PILOT,
                source=source,
                seq=seq,
                type=TYPE,
                payload={"station": source, "observed_at": utc_now(), "pm25": seq % 500 / 10},
                signing_key=key,
            )
            sent_at[record.header.id] = time.perf_counter()
            peer.publish_nowait(topic, record.to_wire())
            next_at += interval
            if (pause := next_at - time.monotonic()) > 0:
                await asyncio.sleep(pause)
        await collector
        for rid in sent_at:
            soak.error(f"{source}: no receipt for {rid}")


async def read(soak: Soak, base: str, reader: int, token: list[str]) -> None:
    """Query until the soak ends; ``token[0]`` is the hospital's current access token."""
    rng = random.Random(reader)
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < soak.until:
            kind = rng.randrange(4)
            try:
                if kind == 0:
                    url = f"{base}/api/v1/ledger/checkpoint"
                    headers: dict[str, str] = {}
                else:
                    async with session.get(f"{base}/api/v1/ledger/entries?start=0&end=0") as r:
                        size = int((await r.json())["size"])
                    index = rng.randrange(max(size, 1))
                    headers = {}
                    url = {
                        1: f"{base}/api/v1/ledger/entries?start={index}&end={index + 20}",
                        2: f"{base}/api/v1/ledger/proof/inclusion?index={index}&size={size}",
                        3: f"{base}/fhir/Observation?subject=Patient/pt-soak{index % 100:04d}",
                    }[kind]
                    if kind == 3:
                        headers = {
                            "Authorization": f"Bearer {token[0]}",
                            "X-Purpose-Of-Use": "TREAT",
                        }
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    # 403: the hospital has no consent for these patients, as it should.
                    if resp.status >= 500 or (resp.status != 200 and kind != 3):
                        soak.error(f"GET {url.removeprefix(base)}: {resp.status}")
                soak.window.queries += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                soak.error(f"reader {reader}: {exc!r}")
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.01)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def report(soak: Soak, pid: int, every: float, rows: list[dict[str, Any]]) -> None:
    started = time.monotonic()
    cpu0 = cpu_seconds(pid)
    print(f"{'t (s)':>6} {'rec/s':>8} {'qry/s':>7} {'p99 ms':>7} {'RSS MB':>7} {'CPU':>5} errors")
    while time.monotonic() < soak.until:
        await asyncio.sleep(min(every, max(soak.until - time.monotonic(), 0.1)))
        window, soak.window = soak.window, Window()
        cpu = cpu_seconds(pid)
        lat = sorted(window.latencies)
        row = {
            "t": round(time.monotonic() - started),
            "records_per_s": window.accepted / every,
            "queries_per_s": window.queries / every,
            "p99_ms": (lat[int(len(lat) * 0.99) - 1] * 1000) if len(lat) >= 2 else 0.0,
            "hub_rss_mb": rss_mb(pid),
            "hub_cores": (cpu - cpu0) / every,
            "errors": len(window.errors),
        }
        cpu0 = cpu
        rows.append(row)
        print(
            f"{row['t']:>6} {row['records_per_s']:>8,.0f} {row['queries_per_s']:>7,.0f} "
            f"{row['p99_ms']:>7.1f} {row['hub_rss_mb']:>7.1f} {row['hub_cores']:>5.2f} "
            f"{row['errors']}",
            flush=True,
        )


async def run(args: argparse.Namespace, hub: ProcessHub) -> tuple[Soak, list[dict[str, Any]]]:
    hospital = HospitalClient(hub, "soak-ehr", HOSPITAL).register()
    token = [hospital.token()]  # lives 300 s: renewed below
    soak = Soak(until=time.monotonic() + args.minutes * 60)
    rows: list[dict[str, Any]] = []
    assert hub.proc is not None
    per = args.rate / args.publishers

    async def renew() -> None:
        while (left := soak.until - time.monotonic()) > 0:
            await asyncio.sleep(min(200, left))
            token[0] = await asyncio.to_thread(hospital.token)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(report(soak, hub.proc.pid, args.interval, rows))
        tasks.create_task(renew())
        for p in range(args.publishers):
            tasks.create_task(publish(soak, hub, f"station-{p}", per, args.window))
        for n in range(args.readers):
            tasks.create_task(read(soak, hub.http_url, n, token))
    return soak, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=1000, help="records/s over all publishers")
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--window", type=int, default=500, help="unreceipted records per publisher")
    ap.add_argument("--interval", type=float, help="seconds per report line (default: 1/30)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    args.interval = args.interval or max(5.0, args.minutes * 60 / 30)
    with tempfile.TemporaryDirectory(prefix="swiftchain-soak-") as tmp:
        work = Path(tmp)
        (work / "mqtt").mkdir()
        broker = Mosquitto(work / "mqtt")
        broker.start()
        hub = process_hub(work / "hub", broker.url, retention_interval_s=86400)
        try:
            hub.start()
            soak, rows = asyncio.run(run(args, hub))
            hub.terminate()
        finally:
            hub.stop()
            broker.stop()
        report_ = verify_ledger(hub.db_path)
    steady = rows[1:] or rows
    first, last = steady[0]["hub_rss_mb"], steady[-1]["hub_rss_mb"]
    rates = [r["records_per_s"] for r in steady]
    summary = {
        "minutes": args.minutes,
        "records_per_s_mean": statistics.fmean(rates),
        "records_per_s_min": min(rates),
        "queries_per_s_mean": statistics.fmean(r["queries_per_s"] for r in steady),
        "hub_rss_first_mb": first,
        "hub_rss_last_mb": last,
        "hub_rss_growth_mb": last - first,
        "errors": len(soak.errors_total),
        "ledger_size": report_.size,
        "verify_ok": report_.ok,
        "intervals": rows,
    }
    print(
        f"\nsoak {args.minutes:g} min: {summary['records_per_s_mean']:,.0f} records/s mean "
        f"(min {summary['records_per_s_min']:,.0f}), {summary['queries_per_s_mean']:,.0f} "
        f"queries/s; hub RSS {first:.1f} -> {last:.1f} MB ({last - first:+.1f}); "
        f"{summary['errors']} errors; ledger {report_.size:,} entries, "
        f"verify {'ok' if report_.ok else 'FAILED'}"
    )
    for e in soak.errors_total[:20]:
        print("  error:", e)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if soak.errors_total or not report_.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
