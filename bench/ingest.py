"""Ingest benchmark: N publishers on loopback -> Mosquitto -> hub (a real ``swiftchain hub``
process, durable synchronous=FULL group commits) -> receipts.

Each publisher behaves like an agent's outbox: it keeps up to ``--window`` records without a
receipt in flight. Records are sealed before the clock starts, so the figures are the hub's
(plus the broker's), not the publishers' signing.

    .venv/bin/python -m bench.ingest --publishers 4 --records 20000

Prints records/s end to end, receipt latency p50/p99, and CPU seconds per record of the hub
and of the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.figures import write_rows
from ledger.envelope import SignedRecord, seal
from ledger.keys import load_private_key
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, process_hub

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def publisher(
    url: str, pilot: str, source: str, records: list[SignedRecord], window: int
) -> list[float]:
    topic = f"swiftchain/v1/{pilot}/{source}/records"
    latencies: list[float] = []
    sent_at: dict[str, float] = {}
    async with MqttPeer(url, receipts=f"swiftchain/v1/{pilot}/{source}/receipts") as peer:
        credit = asyncio.Semaphore(window)
        done = asyncio.Event()
        seen = 0

        async def collect() -> None:
            nonlocal seen
            while seen < len(records):
                await peer.wait_for(seen + 1, wait_s=120)
                for _, r in peer.receipts[seen:]:
                    if r["status"] != "accepted":
                        raise RuntimeError(f"not accepted: {r}")
                    latencies.append(time.perf_counter() - sent_at[r["id"]])
                    credit.release()
                seen = len(peer.receipts)
            done.set()

        collector = asyncio.create_task(collect())
        wires = [(rec.header.id, rec.to_wire()) for rec in records]
        for rid, wire in wires:
            await credit.acquire()
            sent_at[rid] = time.perf_counter()
            # Without awaiting each PUBACK, as an agent pipelines QoS 1 publishes (aiomqtt's
            # publish awaits each one, which would make the publisher the bottleneck).
            peer.publish_nowait(topic, wire)
        await done.wait()
        await collector
    return latencies


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="swiftchain-bench-"))
    (work / "mqtt").mkdir()
    broker = Mosquitto(work / "mqtt")
    broker.start()
    hub = process_hub(
        work / "hub",
        broker.url,
        batch_max_records=args.batch,
        batch_max_ms=args.batch_ms,
        verify_workers=args.workers,
        mqtt_protocol=args.protocol,
    )
    hub.start()
    try:
        per = args.records // args.publishers
        streams = []
        for p in range(args.publishers):
            key_path, _ = hub.register_source("bench", f"s{p}", ["city.air-quality"])
            key = load_private_key(key_path)
            streams.append(
                [
                    seal(
                        pilot="bench",
                        source=f"s{p}",
                        seq=i,
                        type="city.air-quality",
                        payload={"station": f"s{p}", "pm25": i % 500 / 10, "no2": 21.5},
                        signing_key=key,
                    )
                    for i in range(1, per + 1)
                ]
            )
        assert hub.proc is not None and broker.proc is not None
        spy = None
        if args.py_spy:
            # Sample the hub while it works: `--py-spy hub.txt` writes collapsed stacks.
            spy = await asyncio.create_subprocess_exec(
                "py-spy",
                "record",
                "--pid",
                str(hub.proc.pid),
                "--format",
                "raw",
                "--output",
                args.py_spy,
                "--nonblocking",
                "--threads",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1)
        hub_cpu0, broker_cpu0 = cpu_seconds(hub.proc.pid), cpu_seconds(broker.proc.pid)
        self_cpu0 = time.process_time()
        started = time.perf_counter()
        results = await asyncio.gather(
            *[
                publisher(hub.mqtt_url, "bench", f"s{p}", s, args.window)
                for p, s in enumerate(streams)
            ]
        )
        elapsed = time.perf_counter() - started
        hub_cpu = cpu_seconds(hub.proc.pid) - hub_cpu0
        broker_cpu = cpu_seconds(broker.proc.pid) - broker_cpu0
        self_cpu = time.process_time() - self_cpu0
        metrics = hub.get_text("/metrics")
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
    finally:
        hub.stop()
        broker.stop()
    latencies = sorted(x for r in results for x in r)
    n = len(latencies)
    batch_sum = _metric(metrics, "swiftchain_batch_size_sum")
    batch_count = _metric(metrics, "swiftchain_batch_size_count")
    commit_sum = _metric(metrics, "swiftchain_commit_seconds_sum")
    return {
        "records": n,
        "seconds": elapsed,
        "records_per_s": n / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(n * 0.99) - 1] * 1000,
        "hub_cpu_us_per_record": hub_cpu / n * 1e6,
        "broker_cpu_us_per_record": broker_cpu / n * 1e6,
        "publishers_cpu_us_per_record": self_cpu / n * 1e6,
        "hub_cores": hub_cpu / elapsed,
        "mean_batch": batch_sum / max(batch_count, 1),
        "commit_ms_mean": commit_sum / max(batch_count, 1) * 1000,
        "commit_share_of_wall": commit_sum / elapsed,
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=1000, help="unreceipted records per publisher")
    ap.add_argument("--batch", type=int, default=2000, help="hub batch_max_records")
    ap.add_argument("--batch-ms", type=float, default=5.0, help="hub batch_max_ms")
    ap.add_argument("--workers", type=int, default=2, help="hub verify_workers")
    ap.add_argument("--protocol", choices=["v5", "v311"], default="v5", help="hub's MQTT version")
    ap.add_argument(
        "--py-spy", metavar="FILE", help="profile the hub with py-spy (collapsed stacks)"
    )
    ap.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = ap.parse_args()
    out = asyncio.run(run(args))
    if args.json:
        rate = out["records_per_s"]
        write_rows(
            args.json,
            [
                (
                    f"ingest, {args.publishers} publishers -> hub -> receipts, sync=FULL",
                    f"{rate:,.0f} records/s (p50 {out['p50_ms']:.1f} ms, "
                    f"p99 {out['p99_ms']:.1f} ms, "
                    f"hub {out['hub_cpu_us_per_record']:.0f} us CPU/record)",
                    ">= 10,000/s",
                    rate >= 10_000,
                )
            ],
        )
    print(f"cores                 {os.cpu_count()}")
    print(
        f"publishers            {args.publishers} (window {args.window}), hub MQTT {args.protocol}"
    )
    print(f"records               {out['records']} in {out['seconds']:.2f}s")
    print(f"throughput            {out['records_per_s']:,.0f} records/s end to end")
    print(f"receipt latency       p50 {out['p50_ms']:.1f} ms   p99 {out['p99_ms']:.1f} ms")
    print(f"hub CPU per record    {out['hub_cpu_us_per_record']:.0f} us")
    print(f"  (hub busy {out['hub_cores']:.2f} of {os.cpu_count()} cores)")
    print(f"broker CPU per record {out['broker_cpu_us_per_record']:.0f} us")
    print(
        f"publishers' CPU/rec   {out['publishers_cpu_us_per_record']:.0f} us"
        " (this process, sharing the cores)"
    )
    print(
        f"batches               mean {out['mean_batch']:.0f} entries,"
        f" commit {out['commit_ms_mean']:.1f} ms mean"
        f" ({out['commit_share_of_wall']:.0%} of wall time in the writer thread)"
    )


if __name__ == "__main__":
    main()
