"""Ingest benchmark: N publishers on loopback -> Mosquitto -> hub (a real ``swiftchain hub``
process, durable synchronous=FULL group commits) -> one receipt per record.

Each publisher behaves like an agent's outbox: it keeps up to ``--window`` records without a
receipt in flight. The publishers are as lean as the reference's edge
(/work/shared/limits/bench_ingest.py): every record is sealed and serialised before the
clock starts, and they publish with gmqtt at QoS 1 without awaiting each PUBACK, from one
event loop; a receipt is matched to its record by a byte search for its id, not a JSON
parse. So the figures are the hub's and the broker's, not the harness's. A second phase
with ``--latency-window`` records in flight per publisher measures receipt latency when
the hub is not saturated.

    .venv/bin/python -m bench.ingest --publishers 4 --records 20000 [--hub-workers N]
        [--store sqlite|postgresql|alternate] [--pg-url URL] [--store-rounds 2]
        [--suite ed25519-sha256|sm2-sm3|alternate]

Prints records/s end to end (first publish to last receipt), receipt latency p50/p99, and
CPU microseconds per record of the hub (the hub process and all its descendants), the
broker and the publishers. Read against the reference: see bench/report.py.

``--store postgresql`` runs the hub on a PostgreSQL database of its own (``ledger_url``;
the access store and dead letters follow into schemas of it), made on the server at
``--pg-url`` (the machine's, loopback only) and dropped after, ``synchronous_commit=on``;
the server's backends' CPU per record is read beside the hub's. ``--store alternate``
runs SQLite and PostgreSQL rounds in turn (sqlite, pg, sqlite, pg) and reports each
figure on both and their ratio pg / sqlite: a fresh hub, broker and ledger every round.
Without a server answering, the PostgreSQL rounds are skipped and the bench says why.

``--suite sm2-sm3`` runs a hub whose log is an ``sm2-sm3`` one (its key and every source's
are SM2: records signed with SM2, committed and hashed with SM3; ledger/suite.py).
``--suite alternate`` runs ``ed25519-sha256`` and ``sm2-sm3`` rounds in turn, each on a fresh
hub, broker and SQLite ledger, and reports each figure on both and the ratio sm2 / ed25519,
beside the ceiling SM2 verification alone puts on one core (``bench/suites.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import pg_server
from bench.cpu import cpu_seconds, tree_cpu_seconds
from bench.figures import Figure, ratio_text, write_figures
from ledger.envelope import seal
from ledger.keys import load_private_key
from tests.support.broker import Mosquitto
from tests.support.hub import process_hub

__all__ = ["cpu_seconds", "main"]

PILOT = "bench"
#: Bound on one phase (all receipts in); a hub that stops answering fails the bench.
PHASE_S = 300.0
ACCEPTED = b'"status":"accepted"'
ID_FIELD = b'"id":"'


@dataclass
class Stream:
    """One publisher's pre-serialised records and what it saw of their receipts."""

    source: str
    ids: list[bytes]
    messages: list[Any]
    """gmqtt ``Message`` objects, QoS 1, made before the clock starts."""
    window: int
    sent_at: dict[bytes, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    refused: list[bytes] = field(default_factory=list)
    last: float = 0.0
    credit: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def receipts_topic(self) -> str:
        return f"swiftchain/v1/{PILOT}/{self.source}/receipts"

    def on_receipt(self, payload: bytes) -> None:
        now = time.perf_counter()
        start = payload.find(ID_FIELD) + len(ID_FIELD)
        rid = payload[start : payload.index(b'"', start)] if start >= len(ID_FIELD) else b""
        sent = self.sent_at.pop(rid, None)
        if sent is None:
            return  # a receipt of an earlier phase's record, or a duplicate
        if ACCEPTED not in payload:
            self.refused.append(payload[:300])
        self.latencies.append(now - sent)
        self.received += 1
        self.last = now
        self.credit.set()
        if self.received >= len(self.ids):
            self.done.set()


class Publisher:
    """A gmqtt client (MQTT 3.1.1, as the reference's edge) for one stream."""

    def __init__(self, stream: Stream) -> None:
        import gmqtt

        self.stream = stream
        self.client = gmqtt.Client(f"bench-{stream.source}-{os.getpid()}")
        self.client.on_message = self._on_message
        self.subscribed = asyncio.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        self.stream.on_receipt(payload)
        return 0  # PUBACK

    async def connect(self, host: str, port: int) -> None:
        from gmqtt.mqtt.constants import MQTTv311

        await self.client.connect(host, port, version=MQTTv311)
        self.client.subscribe(self.stream.receipts_topic, qos=1)
        await asyncio.wait_for(self.subscribed.wait(), 30)

    async def run(self, stream: Stream) -> None:
        """Publish ``stream`` keeping at most ``stream.window`` records without a receipt."""
        self.stream = stream
        messages = stream.messages
        publish, clock, sent_at = self.client.publish, time.perf_counter, stream.sent_at
        window = stream.window
        for i, (rid, message) in enumerate(zip(stream.ids, messages, strict=True)):
            while i - stream.received >= window:
                stream.credit.clear()
                await stream.credit.wait()
            sent_at[rid] = clock()
            publish(message)
            if i % 64 == 63:
                await asyncio.sleep(0)  # let receipts in between bursts
        await stream.done.wait()

    async def close(self) -> None:
        await self.client.disconnect()


def seal_streams(keys: dict[str, Path], per: int, first_seq: int, window: int) -> list[Stream]:
    """Each source's next ``per`` records, sealed and serialised (the clock is not running)."""
    from gmqtt import Message

    streams = []
    for source, key_path in keys.items():
        key = load_private_key(key_path)
        ids, messages = [], []
        topic = f"swiftchain/v1/{PILOT}/{source}/records"
        for seq in range(first_seq, first_seq + per):
            rec = seal(
                pilot=PILOT,
                source=source,
                seq=seq,
                type="city.air-quality",
                payload={"station": source, "pm25": seq % 500 / 10, "no2": 21.5},
                signing_key=key,
            )
            ids.append(rec.header.id.encode())
            messages.append(Message(topic, rec.to_wire(), qos=1))
        streams.append(Stream(source, ids, messages, window))
    return streams


async def phase(
    hub: Any,
    broker: Any,
    clients: list[Publisher],
    streams: list[Stream],
    db_url: str | None = None,
) -> dict[str, Any]:
    """Publish ``streams``, one per client, until every receipt is in; the figures (with
    ``db_url``, the hub's PostgreSQL database, its backends' CPU too)."""
    backends0 = pg_server.backends_cpu(db_url) if db_url else {}
    hub_cpu0, processes0 = tree_cpu_seconds(hub.proc.pid)
    broker_cpu0 = cpu_seconds(broker.proc.pid)
    self_cpu0 = time.process_time()
    started = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(c.run(s) for c, s in zip(clients, streams, strict=True))), PHASE_S
    )
    elapsed = max(s.last for s in streams) - started
    hub_cpu, processes = tree_cpu_seconds(hub.proc.pid)
    hub_cpu -= hub_cpu0
    broker_cpu = cpu_seconds(broker.proc.pid) - broker_cpu0
    self_cpu = time.process_time() - self_cpu0
    backends = pg_server.backends_cpu(db_url) if db_url else {}
    refused = [r for s in streams for r in s.refused]
    if refused:
        raise RuntimeError(f"{len(refused)} records not accepted, first: {refused[0]!r}")
    latencies = sorted(x for s in streams for x in s.latencies)
    n = len(latencies)
    return {
        "records": n,
        "seconds": elapsed,
        "records_per_s": n / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(n * 0.99) - 1)] * 1000,
        "hub_cpu_us_per_record": hub_cpu / n * 1e6,
        "hub_processes": max(processes0, processes),
        "broker_cpu_us_per_record": broker_cpu / n * 1e6,
        "publishers_cpu_us_per_record": self_cpu / n * 1e6,
        "hub_cores": hub_cpu / elapsed,
        "server_cpu_us_per_record": (
            pg_server.backends_cpu_between(backends0, backends) / n * 1e6 if db_url else 0.0
        ),
        "server_backends": len(backends),
        "load": os.getloadavg()[0],
    }


async def run(
    args: argparse.Namespace, ledger_url: str | None = None, suite: str | None = None
) -> dict[str, Any]:
    """One round: a fresh broker and hub (on the SQLite file in a new folder, or on the
    PostgreSQL database ``ledger_url``) whose log is of ``suite`` (``--suite`` unless told),
    the main phase and the latency phase."""
    work = Path(tempfile.mkdtemp(prefix="swiftchain-bench-"))
    (work / "mqtt").mkdir()
    broker = Mosquitto(work / "mqtt")
    broker.start()
    settings: dict[str, Any] = {
        "batch_max_records": args.batch,
        "batch_max_ms": args.batch_ms,
        "verify_workers": args.workers,
        "mqtt_protocol": args.protocol,
    }
    if args.hub_workers is not None:
        settings["workers"] = args.hub_workers
    if ledger_url is not None:
        settings["ledger_url"] = ledger_url
    suite = suite or (args.suite if args.suite != "alternate" else "ed25519-sha256")
    hub = process_hub(work / "hub", broker.url, suite=suite, **settings)
    hub.start()
    out: dict[str, Any] = {}
    clients: list[Publisher] = []
    try:
        keys = {}
        for p in range(args.publishers):
            keys[f"s{p}"], _ = hub.register_source(PILOT, f"s{p}", ["city.air-quality"])
        per = args.records // args.publishers
        streams = seal_streams(keys, per, 1, args.window)
        later = []
        if args.latency_window:
            per_later = args.latency_records // args.publishers
            later = seal_streams(keys, per_later, per + 1, args.latency_window)
        assert hub.proc is not None and broker.proc is not None
        clients = [Publisher(s) for s in streams]
        host, port = broker.url.removeprefix("mqtt://").split(":")
        await asyncio.gather(*(c.connect(host, int(port)) for c in clients))
        spy = None
        if args.py_spy:
            # Sample the hub while it works: `--py-spy hub.txt` writes collapsed stacks.
            spy = await asyncio.create_subprocess_exec(
                shutil.which("py-spy") or "/tmp/spy/bin/py-spy",
                "record", "--pid", str(hub.proc.pid), "--format", "raw",
                "--output", args.py_spy, "--nonblocking", "--threads", "--subprocesses",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1)
        out["main"] = await phase(hub, broker, clients, streams, ledger_url)
        if later:
            await asyncio.sleep(0.5)  # the hub idle again: latency without a backlog
            out["latency"] = await phase(hub, broker, clients, later, ledger_url)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        out["metrics"] = hub.get_text("/metrics")
    finally:
        for c in clients:
            try:
                await asyncio.wait_for(c.close(), 5)
            except Exception:
                pass
        hub.stop()
        broker.stop()
    shutil.rmtree(work, ignore_errors=True)  # kept, with the hub's log, when a round fails
    return out


def figures(args: argparse.Namespace, out: dict[str, Any], on: str = "") -> list[Figure]:
    """The rows of one round; ``on`` prefixes each measure (``[PostgreSQL] ``)."""
    main, n = out["main"], args.publishers
    workers = "hub default" if args.hub_workers is None else f"hub workers={args.hub_workers}"
    rows = [
        Figure(
            f"ingest, {n} publishers, sync=FULL: records/s end to end",
            f"{main['records_per_s']:,.0f} records/s",
            value=main["records_per_s"],
            unit="records/s",
            reference="ingest.records_per_s",
            op=">=",
            bound=1.2,
        ),
        Figure(
            f"ingest: hub CPU per record, all hub processes ({workers})",
            f"{main['hub_cpu_us_per_record']:.0f} us ({_processes(main['hub_processes'])})",
            value=main["hub_cpu_us_per_record"],
            unit="us",
            reference="ingest.hub_cpu_us",
            op="<=",
            bound=1.2,
        ),
        Figure(
            f"ingest: receipt latency, window {args.window} per publisher (saturated)",
            f"p50 {main['p50_ms']:.1f} ms, p99 {main['p99_ms']:.1f} ms",
        ),
        Figure(
            "ingest: publishers' CPU per record (this harness)",
            f"{main['publishers_cpu_us_per_record']:.0f} us",
            value=main["publishers_cpu_us_per_record"],
            unit="us",
            reference="ingest.edge_cpu_us",
        ),
        Figure(
            "ingest: broker CPU per record",
            f"{main['broker_cpu_us_per_record']:.0f} us",
            value=main["broker_cpu_us_per_record"],
            unit="us",
            reference="ingest.broker_cpu_us",
        ),
    ]
    if "latency" in out:
        lat = out["latency"]
        rows.append(
            Figure(
                f"ingest, --window {args.latency_window}: p99 receipt latency",
                f"{lat['p99_ms']:.1f} ms (p50 {lat['p50_ms']:.1f} ms, "
                f"{lat['records_per_s']:,.0f} records/s)",
                value=lat["p99_ms"],
                unit="ms",
                op="<=",
                bound=100,
            )
        )
    if on:
        rows = [replace(r, measure=on + r.measure) for r in rows]
    return rows


def _processes(n: int) -> str:
    return "1 process" if n == 1 else f"{n} processes"


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument(
        "--window",
        type=int,
        default=500,
        help="unreceipted records per publisher (4 x 500: the reference edge's 2000 in flight)",
    )
    ap.add_argument(
        "--latency-window",
        type=int,
        default=50,
        help="unreceipted records per publisher in the latency phase (0: no such phase)",
    )
    ap.add_argument("--latency-records", type=int, default=8_000)
    ap.add_argument("--batch", type=int, default=2000, help="hub batch_max_records")
    ap.add_argument("--batch-ms", type=float, default=5.0, help="hub batch_max_ms")
    ap.add_argument("--workers", type=int, default=2, help="hub verify_workers")
    ap.add_argument(
        "--hub-workers",
        type=int,
        help="hub setting workers: front-end processes beside the sequencer (0: one process; "
        "default: the hub's own, one per core)",
    )
    ap.add_argument("--protocol", choices=["v5", "v311"], default="v5", help="hub's MQTT version")
    ap.add_argument(
        "--py-spy", metavar="FILE", help="profile the hub with py-spy (collapsed stacks)"
    )
    pg_server.add_store_options(ap, "a SQLite file, a PostgreSQL database of this run's own")
    ap.add_argument(
        "--suite",
        choices=["ed25519-sha256", "sm2-sm3", "alternate"],
        default="ed25519-sha256",
        help="the log's crypto suite; alternate: both in turn, sm2 / ed25519 ratios",
    )
    ap.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = ap.parse_args()
    if args.store_rounds < 1:
        ap.error("--store-rounds must be at least 1")
    try:
        import uvloop

        uvloop.install()  # as the hub and the agent run
    except ImportError:
        pass
    if args.suite == "alternate":
        suite_rounds(args)
        return
    if args.store == "sqlite":
        out = asyncio.run(run(args))
        print_round(args, out)
        if args.json:
            write_figures(args.json, figures(args, out))
        return
    server = pg_server.server_or_skip(args.pg_url, args.json, "ingest on PostgreSQL")
    if server is None:
        return
    if args.store == "postgresql":
        out = pg_round(args, server)
        print_round(args, out)
        if args.json:
            write_figures(args.json, figures(args, out, on="[PostgreSQL] "))
        return
    rounds: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": []}
    for round_ in range(1, args.store_rounds + 1):
        for store in ("sqlite", "postgresql"):
            print(f"== round {round_}, {store}", flush=True)
            out = asyncio.run(run(args)) if store == "sqlite" else pg_round(args, server)
            print_round(args, out)
            rounds[store].append(out)
    show_compared(args, store_figures(args, rounds, server), "PostgreSQL", "SQLite")


def show_compared(args: argparse.Namespace, rows: list[Figure], ours: str, theirs: str) -> None:
    """Print rows of figures each beside its yardstick (``ours``, ``theirs``: the labels),
    and write them for ``--json``."""
    width = max(len(ours), len(theirs))
    print()
    for row in rows:
        print(row.measure)
        if row.beside:
            print(f"    {ours:<{width}} {row.result}\n    {theirs:<{width}} {row.beside}")
            print(f"    {'ratio':<{width}} {row.ratio}")
        else:
            print(f"    {row.result}")
    if args.json:
        write_figures(args.json, rows)


SUITES_COMPARED = ("ed25519-sha256", "sm2-sm3")


def compared(
    measure: str,
    ours: list[dict[str, Any]],
    theirs: list[dict[str, Any]],
    value: Any,
    text: Any,
    unit: str,
) -> Figure:
    """One figure of rounds ``ours`` beside the same rounds of ``theirs``, round by round,
    with each round's ratio ours / theirs and their mean."""
    ratios = [value(a) / value(b) for a, b in zip(ours, theirs, strict=True)]
    return Figure(
        measure,
        " / ".join(text(r) for r in ours),
        target="report",
        value=sum(ratios) / len(ratios),
        unit=unit,
        beside=" / ".join(text(r) for r in theirs),
        ratio=ratio_text(ratios),
    )


def suite_rounds(args: argparse.Namespace) -> None:
    """``--suite alternate``: ed25519, sm2, ed25519, sm2 (``--store-rounds`` pairs)."""
    from bench.suites import sm2_verify_ceiling

    rounds: dict[str, list[dict[str, Any]]] = {s: [] for s in SUITES_COMPARED}
    for round_ in range(1, args.store_rounds + 1):
        for suite in SUITES_COMPARED:
            print(f"== round {round_}, {suite}", flush=True)
            out = asyncio.run(run(args, suite=suite))
            print_round(args, out)
            rounds[suite].append(out)
    rows = suite_figures(args, rounds, sm2_verify_ceiling())
    show_compared(args, rows, "sm2-sm3", "ed25519-sha256")


def suite_figures(
    args: argparse.Namespace, rounds: dict[str, list[dict[str, Any]]], ceiling: float
) -> list[Figure]:
    """Each figure on sm2-sm3 beside ed25519-sha256, round by round, ratios sm2 / ed25519."""
    sm2, ed = rounds["sm2-sm3"], rounds["ed25519-sha256"]
    workers = "hub default" if args.hub_workers is None else f"hub workers={args.hub_workers}"
    on = f"ingest on sm2-sm3 beside ed25519-sha256, {args.publishers} publishers ({workers})"

    def row(measure: str, value: Any, text: Any) -> Figure:
        return compared(measure, sm2, ed, value, text, "x ed25519-sha256")

    rows = [
        row(
            f"{on}: records/s end to end",
            lambda r: r["main"]["records_per_s"],
            lambda r: f"{r['main']['records_per_s']:,.0f} records/s",
        ),
        row(
            f"{on}: hub CPU per record, all hub processes",
            lambda r: r["main"]["hub_cpu_us_per_record"],
            lambda r: f"{r['main']['hub_cpu_us_per_record']:.0f} us",
        ),
        row(
            f"{on}: p99 receipt latency, window {args.window} per publisher (saturated)",
            lambda r: r["main"]["p99_ms"],
            lambda r: f"{r['main']['p99_ms']:.1f} ms",
        ),
    ]
    if all("latency" in r for r in sm2 + ed):
        rows.append(
            row(
                f"{on}, --window {args.latency_window}: p99 receipt latency",
                lambda r: r["latency"]["p99_ms"],
                lambda r: f"{r['latency']['p99_ms']:.1f} ms",
            )
        )
    cores = os.cpu_count() or 1
    best = max(r["main"]["records_per_s"] for r in sm2)
    rows.append(
        Figure(
            "ingest on sm2-sm3: the ceiling of SM2 verification",
            f"{ceiling:,.0f} verifies/s on one core (gmalglib, which holds the GIL: one"
            f" verifying front end per core), so at most {ceiling * cores:,.0f} records/s on"
            f" {cores} cores before anything else a record costs; measured best"
            f" {best:,.0f} records/s",
        )
    )
    loads = " / ".join(
        f"{a['main']['load']:.1f}, {b['main']['load']:.1f}" for a, b in zip(ed, sm2, strict=True)
    )
    rows.append(
        Figure(
            "ingest on sm2-sm3: the machine",
            f"1-min load average after each round (ed25519, sm2): {loads} on {cores} cores",
        )
    )
    return rows


def pg_round(args: argparse.Namespace, server: pg_server.Server) -> dict[str, Any]:
    """One round on a fresh PostgreSQL database (dropped after)."""
    with pg_server.fresh_database(server.url, "swiftchain_bench_ingest") as url:
        return asyncio.run(run(args, url))


def store_figures(
    args: argparse.Namespace, rounds: dict[str, list[dict[str, Any]]], server: pg_server.Server
) -> list[Figure]:
    """Each figure on PostgreSQL beside SQLite, round by round, with ratios pg / sqlite."""
    pg, sq = rounds["postgresql"], rounds["sqlite"]
    on = (
        f"ingest on PostgreSQL (synchronous_commit=on) beside SQLite (synchronous=FULL), "
        f"{args.publishers} publishers"
    )

    def row(measure: str, value: Any, text: Any, unit: str) -> Figure:
        return compared(measure, pg, sq, value, text, unit)

    rows = [
        row(
            f"{on}: records/s end to end",
            lambda r: r["main"]["records_per_s"],
            lambda r: f"{r['main']['records_per_s']:,.0f} records/s",
            "x SQLite",
        ),
        row(
            f"{on}: hub CPU per record, all hub processes",
            lambda r: r["main"]["hub_cpu_us_per_record"],
            lambda r: f"{r['main']['hub_cpu_us_per_record']:.0f} us",
            "x SQLite",
        ),
        row(
            f"{on}: hub + PostgreSQL backends' CPU per record (SQLite: the hub's alone)",
            lambda r: r["main"]["hub_cpu_us_per_record"] + r["main"]["server_cpu_us_per_record"],
            lambda r: (
                f"{r['main']['hub_cpu_us_per_record'] + r['main']['server_cpu_us_per_record']:.0f}"
                f" us (server {r['main']['server_cpu_us_per_record']:.0f} us)"
                if r["main"]["server_backends"]
                else f"{r['main']['hub_cpu_us_per_record']:.0f} us"
            ),
            "x SQLite",
        ),
        row(
            f"{on}: p99 receipt latency, window {args.window} per publisher (saturated)",
            lambda r: r["main"]["p99_ms"],
            lambda r: f"{r['main']['p99_ms']:.1f} ms",
            "x SQLite",
        ),
    ]
    if all("latency" in r for r in pg + sq):
        rows.append(
            row(
                f"{on}, --window {args.latency_window}: p99 receipt latency",
                lambda r: r["latency"]["p99_ms"],
                lambda r: (
                    f"{r['latency']['p99_ms']:.1f} ms (p50 {r['latency']['p50_ms']:.1f} ms, "
                    f"{r['latency']['records_per_s']:,.0f} records/s)"
                ),
                "x SQLite",
            )
        )
    loads = " / ".join(
        f"{q['main']['load']:.1f}, {p['main']['load']:.1f}" for q, p in zip(sq, pg, strict=True)
    )
    rows.append(
        Figure(
            "ingest on PostgreSQL: the server",
            f"{server.describe()}; the bench's database pinned to synchronous_commit=on "
            f"(checked); 1-min load average after each round (sqlite, pg): {loads} on "
            f"{os.cpu_count()} cores",
        )
    )
    return rows


def print_round(args: argparse.Namespace, out: dict[str, Any]) -> None:
    main_ = out["main"]
    print(f"cores                 {os.cpu_count()}")
    print(
        f"publishers            {args.publishers} (window {args.window}), hub MQTT {args.protocol}"
    )
    print(f"records               {main_['records']} in {main_['seconds']:.2f}s")
    print(f"throughput            {main_['records_per_s']:,.0f} records/s end to end")
    print(f"receipt latency       p50 {main_['p50_ms']:.1f} ms   p99 {main_['p99_ms']:.1f} ms")
    print(
        f"hub CPU per record    {main_['hub_cpu_us_per_record']:.0f} us"
        f" ({main_['hub_processes']} hub processes)"
    )
    print(f"  (hub busy {main_['hub_cores']:.2f} of {os.cpu_count()} cores)")
    if main_["server_backends"]:
        print(
            f"server CPU per record {main_['server_cpu_us_per_record']:.0f} us"
            f" ({main_['server_backends']} PostgreSQL backends)"
        )
    print(f"broker CPU per record {main_['broker_cpu_us_per_record']:.0f} us")
    print(f"publishers' CPU/rec   {main_['publishers_cpu_us_per_record']:.0f} us")
    batches = _metric(out["metrics"], "swiftchain_batch_size_count")
    if batches:
        entries = _metric(out["metrics"], "swiftchain_batch_size_sum")
        commit = _metric(out["metrics"], "swiftchain_commit_seconds_sum")
        print(
            f"batches               mean {entries / batches:.0f} entries,"
            f" commit {commit / batches * 1000:.1f} ms mean (whole run, as /metrics counts)"
        )
    if "latency" in out:
        lat = out["latency"]
        print(
            f"window {args.latency_window:<4}           {lat['records']} records, "
            f"{lat['records_per_s']:,.0f} records/s, "
            f"p50 {lat['p50_ms']:.1f} ms   p99 {lat['p99_ms']:.1f} ms"
        )
    print(f"load average          {os.getloadavg()[0]:.2f} (1 min)", flush=True)


if __name__ == "__main__":
    main()
