"""``make bench``: run every benchmark beside the reference yardsticks, then write
``bench/results.md`` with the machine, the versions, and each figure next to the
reference's from the same run, their ratio, the target and whether it was met.

    .venv/bin/python -m bench.report [--only ledger,ingest] [--query-records 1000000]

Each benchmark runs as ``python -m bench.<module> [args] --json FILE`` in a process of its
own (so one failing does not stop the others); a benchmark that does not exist yet is listed
as missing, and one without ``--json`` gets the tail of its output in the report instead of
rows. Most are a module of their own name; the PostgreSQL ones (COMMANDS) are a module run
with arguments: ``ingest-pg`` and ``query-pg`` run the hub on SQLite and on PostgreSQL in
turn (``--store alternate``), ``pg-drivers`` the batched append beside pgbench. Their
yardstick (SQLite, pgbench) is measured by the bench itself, in the same run, and shown in
the reference and ratio columns; they have no target ("report").

A benchmark with a reference (bench/limits.py: suites and ledger -> bench_crypto.py, ingest
and edge -> bench_ingest.py, query -> bench_http.py) runs in two rounds, each right after a run of
its reference script: ref, ours, ref, ours. The machine is shared and noisy, so a rate
alone means little; the ratio of two figures taken minutes apart means a lot. Without a
limits folder our figures are reported alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import limits
from bench.figures import Figure
from bench.limits import RefRun

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
#: In the order they run; the query benches after the others but two (they reuse cached
#: ledgers). ``suites`` (~30 s) right after its reference run, then ``ledger`` beside it too.
BENCHES = (
    "suites",
    "ledger",
    "pg-drivers",
    "ingest",
    "edge",
    "ingest-pg",
    "ingest-sm2",
    "mirror",
    "query",
    "query-pg",
    "replay",
    "witness",
    "failover",
)
#: Benchmarks that are a module run with arguments: (module in bench/, its arguments).
COMMANDS = {
    # Batches of 1000 only (the hub's batches are of hundreds to thousands): ~30 s.
    "pg-drivers": ("pg_drivers", ["--batches", "1000"]),
    "ingest-pg": ("ingest", ["--store", "alternate"]),
    # ed25519, sm2, ed25519, sm2 on SQLite; SM2 ingest is ~1k records/s a core: ~3 min.
    "ingest-sm2": ("ingest", ["--suite", "alternate", "--records", "12000"]),
    "query-pg": ("query", ["--store", "alternate"]),
    # Two takeovers after kill -9 and two after a frozen sequencer: ~1 min.
    "failover": ("failover", ["--rounds", "4"]),
}
#: Ledger size of the query-pg bench unless --pg-query-records says otherwise: each of its
#: four runs copies the ledger (a file, or a PostgreSQL database cloned from a kept copy).
PG_QUERY_RECORDS = 200_000
PACKAGES = (
    "aiohttp",
    "pydantic",
    "cryptography",
    "PyNaCl",
    "gmalglib",
    "tongsuopy",
    "rfc8785",
    "fhir.resources",
    "prometheus-client",
    "uvloop",
    "PyJWT",
    "joserfc",
    "authlib",
)
#: Whole-run bound per benchmark; a bench past it is killed and reported as such.
TIMEOUT_S = 600
#: The reference script (a key of bench.limits.SCRIPTS) each benchmark is read against.
REFERENCE_OF = {
    "suites": "crypto",
    "ledger": "crypto",
    "ingest": "ingest",
    "edge": "ingest",
    "query": "http",
}
#: Arguments of a benchmark's later rounds: only the figures read against the reference
#: again, to keep ``make bench`` bounded (the others are reported from round 1).
LATER_ROUNDS = {
    "suites": ["--suites-only"],
    "ledger": ["--verify-only"],
    "edge": ["--skip-rss"],
    "query": ["--no-python-load"],
}


def machine(loads: list[float]) -> list[tuple[str, str]]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    try:
        out = subprocess.run(
            [mosquitto, "-h"], capture_output=True, text=True, timeout=10
        ).stdout.splitlines()
        mosq = next((ln.strip() for ln in out if "version" in ln), "unknown")
    except OSError:
        mosq = "not installed"
    return [
        ("nproc", str(os.cpu_count())),
        ("CPU", cpu),
        ("RAM", ram),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("SQLite", sqlite3.sqlite_version),
        ("Mosquitto", mosq),
        (
            "load average (1 min): start / highest / end",
            f"{loads[0]:.2f} / {max(loads):.2f} / {os.getloadavg()[0]:.2f}",
        ),
    ]


def versions() -> list[tuple[str, str]]:
    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return found


def run_bench(name: str, extra: list[str], logs: Path, round_: int) -> dict[str, Any]:
    module, fixed = COMMANDS.get(name, (name, []))
    script = BENCH / f"{module}.py"
    if not script.exists():
        return {"name": name, "status": "missing", "rows": [], "seconds": 0.0, "round": round_}
    extra = [*fixed, *extra]
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.json"
        has_json = "--json" in script.read_text()
        cmd = [sys.executable, "-m", f"bench.{module}", *extra]
        if has_json:
            cmd += ["--json", str(figures)]
        print(f"== {name}: {' '.join(cmd[1:])} (round {round_})", flush=True)
        started = time.monotonic()
        log = logs / f"{name}-{round_}.log"
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            output = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            status = f"killed after {TIMEOUT_S} s"
            output = str(exc.stdout or "") + str(exc.stderr or "")
        seconds = time.monotonic() - started
        log.write_text(output)
        print(output[-2000:], flush=True)
        rows = (
            [Figure.from_json(r) for r in json.loads(figures.read_text())]
            if figures.exists()
            else []
        )
    tail = "" if rows else "\n".join(output.strip().splitlines()[-15:])
    return {
        "name": name,
        "status": status,
        "rows": rows,
        "seconds": seconds,
        "args": " ".join(extra),
        "tail": tail,
        "round": round_,
    }


def plan(chosen: list[str], rounds: int) -> list[tuple[str | None, list[str]]]:
    """Groups of benchmarks in running order, each with the reference they are read
    against (None: no reference) -- consecutive benchmarks sharing one run beside it."""
    groups: list[tuple[str | None, list[str]]] = []
    for name in (b for b in BENCHES if b in chosen):
        ref = REFERENCE_OF.get(name) if rounds else None
        if groups and ref is not None and groups[-1][0] == ref:
            groups[-1][1].append(name)
        else:
            groups.append((ref, [name]))
    return groups


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _join(parts: list[str]) -> str:
    return " / ".join(parts) if parts else "-"


def _mark(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "**not met**")


def figure_rows(
    results: list[dict[str, Any]], refs: dict[tuple[str, int], dict[str, float]]
) -> list[tuple[str, str, str, str, str, str, bool | None]]:
    """(bench, measure, ours, reference, ratio, target, met) for every measure of every
    bench, its rounds side by side; a reference row is decided on the mean of its ratios."""
    by_bench: dict[str, dict[str, list[tuple[int, Figure]]]] = {}
    for res in results:
        measures = by_bench.setdefault(res["name"], {})
        for fig in res["rows"]:
            measures.setdefault(fig.measure, []).append((res["round"], fig))
    out = []
    for bench, measures in by_bench.items():
        ref_name = REFERENCE_OF.get(bench)
        for measure, runs in measures.items():
            fig = runs[-1][1]
            ours = _join([f.result for _, f in runs])
            if fig.reference is None:
                decided = [f.decide() for _, f in runs]
                met = None if None in decided else all(decided)
                # A yardstick the bench measured itself (SQLite, pgbench), or none.
                beside = _join([f.beside for _, f in runs if f.beside])
                ratio = _join([f.ratio for _, f in runs if f.ratio])
                out.append((bench, measure, ours, beside, ratio, fig.target_text(), met))
                continue
            theirs, ratios = [], []
            for round_, f in runs:
                ref = refs.get((ref_name or "", round_), {}).get(f.reference or "")
                if ref is None or f.value is None:
                    continue
                theirs.append(f"{_num(ref)} {f.unit}".strip())
                ratios.append(f.value / ref if ref else float("inf"))
            if not ratios:
                out.append((bench, measure, ours, "no reference", "-", fig.target_text(), None))
                continue
            mean = sum(ratios) / len(ratios)
            ratio = _join([f"{r:.2f}" for r in ratios])
            if len(ratios) > 1:
                ratio += f" (mean {mean:.2f})"
            met = fig.decide(mean)
            out.append((bench, measure, ours, _join(theirs), ratio, fig.target_text(), met))
    return out


def render(
    results: list[dict[str, Any]],
    ref_runs: list[tuple[str, int, RefRun]],
    notes: list[str],
    loads: list[float],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    refs = {(name, round_): run.figures for name, round_, run in ref_runs}
    lines = [
        "# Swiftchain benchmark results",
        "",
        f"Written by `make bench` (bench/report.py) on {when}. Each figure of ours stands "
        "beside the reference yardstick's (/work/shared/limits: lean one-stage "
        "implementations of the hub's work) measured on this machine in the same run, "
        "alternately (reference, ours, reference, ours); `a / b` are the two rounds. The "
        "**ratio** (ours / reference) is what a target bounds: it holds from one machine "
        "to the next, the rates do not. A row with a reference is decided on the mean of "
        "its two ratios; the others on their own figures (in every round). The PostgreSQL "
        "rows (pg-drivers, ingest-pg, query-pg) carry a yardstick of their own, measured "
        "alternately in the same run: the hub on SQLite beside it on PostgreSQL, pgbench "
        "beside a driver; their ratio is ours / it, with no target (`report`).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine(loads)),
        "",
        "## Versions",
        "",
        "| package | version |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in versions()),
        "",
        "## Figures",
        "",
        "| bench | measure | ours | reference | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = figure_rows(results, refs)
    for bench, measure, ours, theirs, ratio, target, met in rows:
        lines.append(f"| {bench} | {measure} | {ours} | {theirs} | {ratio} | {target} | "
                     f"{_mark(met)} |")  # fmt: skip
    met_n = sum(1 for r in rows if r[6] is True)
    failed = sum(1 for r in rows if r[6] is False)
    lines += ["", f"{met_n} figures met their target, {failed} did not.", ""]
    if ref_runs:
        lines += [
            "## Reference runs",
            "",
            "| reference | round | status | wall time | figures |",
            "|---|---|---|---|---|",
        ]
        for _, round_, run in ref_runs:
            figs = ", ".join(f"`{k}` {_num(v)}" for k, v in run.figures.items()) or "-"
            lines.append(
                f"| {run.script} | {round_} | {run.status} | {run.seconds:.0f} s | {figs} |"
            )
        lines += ["", *(f"- `{k}`: {v}" for k, v in limits.LEGEND.items()), ""]
    lines += [
        "## Runs",
        "",
        "| bench | round | arguments | status | wall time |",
        "|---|---|---|---|---|",
    ]
    for res in results:
        lines.append(
            f"| {res['name']} | {res['round']} | `{res.get('args', '')}` | {res['status']} | "
            f"{res['seconds']:.0f} s |"
        )
    for res in results:
        if res.get("tail"):
            lines += ["", f"### {res['name']} (no machine-readable figures): output", "", "```"]
            lines += [str(res["tail"]), "```"]
    if notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated subset of: " + ",".join(BENCHES))
    parser.add_argument(
        "--query-records",
        type=int,
        help="ledger size for bench/query.py (default: 1M if already built in bench/out/, "
        "else 200,000 to keep make bench bounded)",
    )
    parser.add_argument(
        "--pg-query-records",
        type=int,
        default=PG_QUERY_RECORDS,
        help=f"ledger size for query-pg (default {PG_QUERY_RECORDS:,})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of (reference, ours) for benchmarks with a reference (0: no reference)",
    )
    parser.add_argument(
        "--bench-args",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="more arguments for one benchmark: --bench-args 'ingest=--records 4000'",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHES)
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}: choose from "
                     + ", ".join(BENCHES))  # fmt: skip
    loads = [os.getloadavg()[0]]
    logs = BENCH / "out" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    query_records = args.query_records
    if query_records is None:
        cached = (BENCH / "out" / "query-1000000-10000" / "ledger.db").exists()
        query_records = 1_000_000 if cached else 200_000
        if not cached and "query" in chosen:
            notes.append(
                "bench/query.py ran on 200,000 records, not the 1M of its target: the 1M "
                "ledger was not built in bench/out/ yet (`python -m bench.query` builds it "
                "once)."
            )
    extra = {
        "query": ["--records", str(query_records)],
        "query-pg": ["--records", str(args.pg_query_records)],
    }
    if "query-pg" in chosen and args.pg_query_records != query_records and "query" in chosen:
        notes.append(
            f"query-pg ran on {args.pg_query_records:,} records (query: {query_records:,}): "
            "its four runs each start a hub on a copy of the ledger, a file or a database "
            "cloned from the PostgreSQL copy kept on the server (--pg-query-records)."
        )
    for given in args.bench_args:
        name, _, more = given.partition("=")
        if name not in BENCHES:
            parser.error(f"--bench-args {given!r}: no benchmark {name!r}")
        extra[name] = [*extra.get(name, []), *shlex.split(more)]
    folder = limits.folder() if args.rounds else None
    python = None
    if folder is not None:
        try:
            python = limits.ensure_venv()
        except (OSError, subprocess.SubprocessError) as exc:
            notes.append(f"The reference's venv could not be set up ({exc}): no reference.")
    if python is None:
        notes.append(
            "No reference run: "
            + ("--rounds 0." if not args.rounds else "no limits folder ($SWIFTCHAIN_LIMITS, "
               "<repo>/../shared/limits, /work/shared/limits) or no venv for it.")
            + " Our figures alone; the ratio rows are not decided."
        )  # fmt: skip
    results: list[dict[str, Any]] = []
    ref_runs: list[tuple[str, int, RefRun]] = []
    for ref, names in plan(chosen, args.rounds if python is not None else 0):
        if ref is None or folder is None or python is None:
            results += [run_bench(n, extra.get(n, []), logs, 1) for n in names]
            loads.append(os.getloadavg()[0])
            continue
        for round_ in range(1, args.rounds + 1):
            ref_runs.append((ref, round_, limits.run(ref, folder, python, logs, round_)))
            loads.append(os.getloadavg()[0])
            for n in names:
                again = LATER_ROUNDS.get(n, []) if round_ > 1 else []
                results.append(run_bench(n, [*extra.get(n, []), *again], logs, round_))
                loads.append(os.getloadavg()[0])
    for res in results:
        if res["status"] == "missing" and res["round"] == 1:
            notes.append(f"bench/{res['name']}.py does not exist yet: skipped.")
    if max(loads) > 1.5:
        notes.append(
            "Other work shared this machine during the run (1-minute load average up to "
            f"{max(loads):.1f} on {os.cpu_count()} cores): rates are lower bounds, the "
            "ratios (each taken minutes apart from its reference) are the figures to read."
        )
    notes.append("Full outputs of each run: bench/out/logs/ (not committed).")
    text = render(results, ref_runs, notes, loads)
    args.output.write_text(text)
    print(text)
    if any(re.match(r"exit|killed", str(r["status"])) for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
