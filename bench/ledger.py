"""Ledger benchmark (``make bench``): append rate, proof time at 1M entries, verify rate.

Targets on 2 cores: appends >= 200,000 entries/s in batches of 1000 with
synchronous=FULL; inclusion and consistency proofs < 1 ms at 1M entries; full verify of
100k signed entries (with Ed25519 checks) at >= 0.7 x the rate of 2 cores of bare PyNaCl
verifies (2 x single-core verify/s of the reference's bench_crypto.py, read by
bench/report.py in the same run). The 1M-entry and 100k-record ledgers are built once into
bench/out/ and reused; pass --rebuild to make them again.

    .venv/bin/python bench/ledger.py [--rebuild] [--appends N] [--samples N] [--verify-only]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import Figure, write_rows  # noqa: E402
from ledger.hashing import leaf_hash  # noqa: E402
from ledger.keystore import KeyStore  # noqa: E402
from ledger.proofs import verify_consistency, verify_inclusion  # noqa: E402
from ledger.store import LedgerReader, LedgerWriter, NewEntry  # noqa: E402
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite  # noqa: E402
from ledger.verify import verify_ledger  # noqa: E402
from tests.support.ledger_builder import LedgerBuilder, record_entry  # noqa: E402

OUT = ROOT / "bench" / "out"
#: The Ed25519 ledger's verify rate of this run, for the sm2-sm3 row beside it.
LAST_RATE: dict[str, float] = {}
BATCH = 1000
#: CPU microseconds per entry of each run, by its ledger file name.
CPU_US: dict[str, float] = {}
MILLION = 1_000_000
VERIFY_RECORDS = 100_000


def _fresh(path: Path) -> Path:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    return path


def access_leaf(i: int) -> bytes:
    """A leaf the size of a real ``access`` entry (~200 bytes of JCS)."""
    return (
        b'{"at":"2026-05-01T08:30:00.000000Z","client":"hospital-a/ehr","count":1,'
        b'"decision":"allow","kind":"access","org":"hospital-a","pilot":"cardio",'
        b'"purpose":"TREAT","reason":"policy and consent allow","type":"fhir.Observation",'
        b'"n":%d}' % i
    )


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the signature helpers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rate_of_appends(
    path: Path, batches: list[list[NewEntry]], keys: KeyStore | None = None
) -> tuple[float, list[float]]:
    writer = LedgerWriter(_fresh(path), origin="bench.example/log", keys=keys)
    mode = writer.conn.execute("PRAGMA synchronous").fetchone()[0]
    assert mode == 2, "appends must be measured with synchronous=FULL"
    times = []
    started, cpu = time.perf_counter(), cpu_seconds()
    for batch in batches:
        t = time.perf_counter()
        writer.append(batch)
        times.append(time.perf_counter() - t)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    writer.close()
    n = sum(len(b) for b in batches)
    CPU_US[path.name] = cpu / n * 1e6
    return n / elapsed, times


def bench_plain_appends(n: int) -> tuple[float, list[float]]:
    batches = [
        [NewEntry("access", access_leaf(i)) for i in range(start, min(start + BATCH, n))]
        for start in range(0, n, BATCH)
    ]
    return rate_of_appends(OUT / "appends-plain.db", batches)


def bench_record_appends(n: int, *, sealed: bool = False) -> tuple[float, list[float]]:
    # Signed, committed records made up front: that is the edge's work and the signature
    # check the hub's; this measures what the store does with them. ``sealed``: with a key
    # store, the bodies sealed under their scope's data key (a key made in the first batch,
    # then found in the key store's cache).
    source = LedgerBuilder(_fresh(OUT / "appends-source.db"))
    entries = [record_entry(r) for r in source.records(n)]
    source.close()
    batches = [entries[i : i + BATCH] for i in range(0, n, BATCH)]
    if not sealed:
        return rate_of_appends(OUT / "appends-records.db", batches)
    with KeyStore.open(_fresh(OUT / "appends-sealed.db.keys")) as keys:
        return rate_of_appends(OUT / "appends-sealed.db", batches, keys)


def ledger_of_size(path: Path, size: int, rebuild: bool) -> Path:
    if path.exists() and not rebuild:
        try:
            with LedgerReader(path) as reader:
                if reader.size() == size:
                    return path
        except Exception:
            pass
    print(f"  building {path.name} ({size:,} entries, once)...", flush=True)
    writer = LedgerWriter(_fresh(path), origin="bench.example/log")
    for start in range(0, size, 10_000):
        writer.append([NewEntry("access", access_leaf(i)) for i in range(start, start + 10_000)])
    writer.close()
    return path


def record_ledger(path: Path, records: int, rebuild: bool, suite: Suite = ED25519_SHA256) -> Path:
    if path.exists() and not rebuild:
        try:
            with LedgerReader(path) as reader:
                if reader.size() == records + 1:
                    return path
        except Exception:
            pass
    print(f"  building {path.name} ({records:,} signed records, once)...", flush=True)
    builder = LedgerBuilder.of_suite(_fresh(path), suite)
    builder.register_source()
    builder.append_records(records, batch=BATCH)
    builder.close()
    return path


def timed(fn: Callable[[], object], samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


def bench_proofs(path: Path, samples: int) -> dict[str, list[float]]:
    rng = random.Random(2)
    with LedgerReader(path) as reader:
        size = reader.size()
        root = reader.root(size)
        cases = [(rng.randrange(size), rng.randrange(1, size + 1)) for _ in range(samples)]
        incl = [(min(i, n - 1), n) for i, n in cases]
        cons = [(min(a, b) or 1, max(a, b)) for a, b in cases]
        # Warm the page cache first: a cold 1M-entry file measures the disk, not the proofs.
        for i, n in incl[:200]:
            reader.inclusion_proof(i, n)
            reader.consistency_proof(max(1, i), n)
        it = iter(incl)
        inclusion = timed(lambda: reader.inclusion_proof(*next(it)), samples)
        it2 = iter(cons)
        consistency = timed(lambda: reader.consistency_proof(*next(it2)), samples)
        # Pure verification of proofs for the full tree (what a client does).
        index = rng.randrange(size)
        proof = reader.inclusion_proof(index, size)
        (entry,) = reader.entries(index, index + 1)
        lh = leaf_hash(entry.leaf)
        verifying = timed(lambda: verify_inclusion(lh, index, size, proof, root), samples)
        first = size // 3
        cproof = reader.consistency_proof(first, size)
        first_root = reader.root(first)
        verifying_c = timed(
            lambda: verify_consistency(first, size, cproof, first_root, root), samples
        )
        root_times = timed(lambda: reader.root(rng.randrange(1, size + 1)), samples)
    return {
        "inclusion": inclusion,
        "consistency": consistency,
        "verify_inclusion": verifying,
        "verify_consistency": verifying_c,
        "root": root_times,
    }


def bench_verify(path: Path) -> tuple[float, float, int]:
    t, cpu = time.perf_counter(), cpu_seconds()
    report = verify_ledger(path)
    elapsed, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    assert report.ok, report.problems[:3]
    CPU_US["verify-" + path.name] = cpu / report.size * 1e6
    return report.size / elapsed, report.signatures / elapsed, report.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the reused ledgers")
    parser.add_argument("--appends", type=int, default=200_000, help="entries per append run")
    parser.add_argument("--samples", type=int, default=2000, help="proofs timed per kind")
    parser.add_argument(
        "--verify-only", action="store_true", help="only the full verify of signed entries"
    )
    parser.add_argument(
        "--sm2-only",
        action="store_true",
        help="only the full verifies: of an sm2-sm3 ledger beside an Ed25519 one",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here (for make bench)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    print(
        f"Swiftchain ledger benchmark: Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    rows: list[tuple[str, str, str, bool] | Figure] = []
    if args.verify_only:
        rows.append(verify_row(args.rebuild))
        finish(rows, args.json)
        return
    if args.sm2_only:
        rows.append(verify_row(args.rebuild))  # the Ed25519 ledger's, beside it
        rows.append(sm2_verify_row(args.rebuild))
        finish(rows, args.json)
        return

    plain, plain_times = bench_plain_appends(args.appends)
    rows.append(
        (
            f"append, plain entries, batches of {BATCH}, sync=FULL",
            f"{plain:,.0f} entries/s (p99 batch {p99(plain_times) * 1e3:.1f} ms, "
            f"{CPU_US['appends-plain.db']:.1f} us CPU/entry)",
            ">= 200,000/s",
            plain >= 200_000,
        )
    )
    n_records = min(args.appends, 100_000)
    records, record_times = bench_record_appends(n_records)
    rows.append(
        (
            f"append, records + bodies, batches of {BATCH}, sync=FULL",
            f"{records:,.0f} entries/s (p99 batch {p99(record_times) * 1e3:.1f} ms, "
            f"{CPU_US['appends-records.db']:.1f} us CPU/entry)",
            ">= 200,000/s",
            records >= 200_000,
        )
    )
    sealed, sealed_times = bench_record_appends(n_records, sealed=True)
    rows.append(
        (
            f"append, records + bodies sealed under data keys, batches of {BATCH}, sync=FULL",
            f"{sealed:,.0f} entries/s (p99 batch {p99(sealed_times) * 1e3:.1f} ms, "
            f"{CPU_US['appends-sealed.db']:.1f} us CPU/entry)",
            "-",
            True,
        )
    )

    big = ledger_of_size(OUT / "ledger-1m.db", MILLION, args.rebuild)
    proofs = bench_proofs(big, args.samples)
    for name, label in (
        ("inclusion", "inclusion proof from the store at 1M (warm)"),
        ("consistency", "consistency proof from the store at 1M (warm)"),
    ):
        mean, worst = statistics.fmean(proofs[name]) * 1e3, p99(proofs[name]) * 1e3
        rows.append((label, f"{mean:.3f} ms mean, {worst:.3f} ms p99", "< 1 ms", worst < 1))
    for name, label in (
        ("root", "tree head (any size) from the store at 1M"),
        ("verify_inclusion", "verify an inclusion proof (pure)"),
        ("verify_consistency", "verify a consistency proof (pure)"),
    ):
        mean, worst = statistics.fmean(proofs[name]) * 1e3, p99(proofs[name]) * 1e3
        rows.append((label, f"{mean:.3f} ms mean, {worst:.3f} ms p99", "-", True))

    rows.append(verify_row(args.rebuild))
    rows.append(sm2_verify_row(args.rebuild))
    big_rate, _, big_size = bench_verify(big)
    rows.append(
        (
            f"full verify, {big_size:,} plain entries (no signatures)",
            f"{big_rate:,.0f} entries/s ({CPU_US['verify-' + big.name]:.1f} us CPU/entry)",
            "-",
            True,
        )
    )

    finish(rows, args.json)


def verify_row(rebuild: bool) -> Figure:
    """Full verify of 100k signed entries, read against 2 cores of bare PyNaCl verifies."""
    signed = record_ledger(OUT / f"records-{VERIFY_RECORDS // 1000}k.db", VERIFY_RECORDS, rebuild)
    per_entry, _, size = bench_verify(signed)
    LAST_RATE["ed25519"] = per_entry
    return Figure(
        f"full verify, {size:,} signed entries (Ed25519, 2 workers)",
        f"{per_entry:,.0f} entries/s ({CPU_US['verify-' + signed.name]:.0f} us CPU/entry)",
        value=per_entry,
        unit="entries/s",
        reference="crypto.verify_x2_per_s",
        op=">=",
        bound=0.7,
    )


#: Records of the sm2-sm3 ledger verified: SM2 verification is ~10x Ed25519's cost.
SM2_VERIFY_RECORDS = 20_000


def sm2_verify_row(rebuild: bool) -> Figure:
    """Full verify of an sm2-sm3 ledger (SM3 tree, SM2 signatures), beside the Ed25519 one's
    rate measured just before it (``verify_row``)."""
    name = f"records-sm2-{SM2_VERIFY_RECORDS // 1000}k.db"
    signed = record_ledger(OUT / name, SM2_VERIFY_RECORDS, rebuild, SM2_SM3)
    per_entry, _, size = bench_verify(signed)
    ed = LAST_RATE.get("ed25519")
    beside = f"ed25519-sha256 ledger {ed:,.0f} entries/s" if ed else ""
    return Figure(
        f"full verify, {size:,} signed entries on sm2-sm3 (SM3 tree, SM2, 2 workers)",
        f"{per_entry:,.0f} entries/s ({CPU_US['verify-' + signed.name]:.0f} us CPU/entry)",
        beside=beside,
        ratio=f"{per_entry / ed:.2f}" if ed else "",
    )


def finish(rows: list[tuple[str, str, str, bool] | Figure], json_path: Path | None) -> None:
    figures = [r if isinstance(r, Figure) else Figure(*r) for r in rows]
    width = max(len(f.measure) for f in figures)
    rwidth = max(len(f.result) for f in figures)
    print()
    print(f"{'measure':<{width}}  {'result':<{rwidth}}  {'target':<12}  met")
    print(f"{'-' * width}  {'-' * rwidth}  {'-' * 12}  ---")
    for f in figures:
        met = {True: "yes", False: "NO", None: "-"}[f.decide()]
        print(f"{f.measure:<{width}}  {f.result:<{rwidth}}  {f.target_text():<12}  {met}")
    if json_path:
        write_rows(json_path, figures)
    print(
        f"\nload average {os.getloadavg()[0]:.2f} at end (other work on this machine skews rates)"
    )


if __name__ == "__main__":
    main()
