"""``make bench``: run every benchmark, then write ``bench/results.md`` with the machine, the
versions, and each figure next to its target.

    .venv/bin/python -m bench.report [--only ledger,ingest] [--query-records 1000000]

Each benchmark runs as ``python -m bench.<name> --json FILE`` in a process of its own (so one
failing does not stop the others); a benchmark that does not exist yet is listed as missing,
and one without ``--json`` gets the tail of its output in the report instead of rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
#: In the order they run; the query bench last but one (it reuses a cached 1M ledger).
BENCHES = ("ledger", "ingest", "edge", "mirror", "query", "replay", "witness")
PACKAGES = (
    "aiohttp",
    "pydantic",
    "cryptography",
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


def machine(load_at_start: float) -> list[tuple[str, str]]:
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
        ("load average (1 min) at start / end", f"{load_at_start:.2f} / {os.getloadavg()[0]:.2f}"),
    ]


def versions() -> list[tuple[str, str]]:
    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return found


def run_bench(name: str, extra: list[str], logs: Path) -> dict[str, object]:
    script = BENCH / f"{name}.py"
    if not script.exists():
        return {"name": name, "status": "missing", "rows": [], "seconds": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.json"
        has_json = "--json" in script.read_text()
        cmd = [sys.executable, "-m", f"bench.{name}", *extra]
        if has_json:
            cmd += ["--json", str(figures)]
        print(f"== bench/{name}.py: {' '.join(cmd[1:])}", flush=True)
        started = time.monotonic()
        log = logs / f"{name}.log"
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
        rows = json.loads(figures.read_text()) if figures.exists() else []
    tail = "" if rows else "\n".join(output.strip().splitlines()[-15:])
    return {
        "name": name,
        "status": status,
        "rows": rows,
        "seconds": seconds,
        "args": " ".join(extra),
        "tail": tail,
    }


def render(results: list[dict[str, object]], notes: list[str], load_at_start: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Swiftchain benchmark results",
        "",
        f"Written by `make bench` (bench/report.py) on {when}. Targets are those each "
        "benchmark's docstring sets for 2 cores; rates on a shared or busy machine (see the "
        "load average: above 2 means other work shared these 2 cores) are lower bounds.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine(load_at_start)),
        "",
        "## Versions",
        "",
        "| package | version |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in versions()),
        "",
        "## Figures",
        "",
        "| bench | measure | result | target | met |",
        "|---|---|---|---|---|",
    ]
    passed = failed = 0
    for res in results:
        rows = res["rows"]
        assert isinstance(rows, list)
        for row in rows:
            mark = "pass" if row["met"] else "**FAIL**"
            passed += bool(row["met"])
            failed += not row["met"]
            lines.append(
                f"| {res['name']} | {row['measure']} | {row['result']} | {row['target']} | {mark} |"
            )
    lines += [
        "",
        f"{passed} figures met their target, {failed} did not.",
        "",
        "## Runs",
        "",
        "| bench | arguments | status | wall time |",
        "|---|---|---|---|",
    ]
    for res in results:
        seconds = res["seconds"]
        assert isinstance(seconds, float)
        lines.append(
            f"| {res['name']} | `{res.get('args', '')}` | {res['status']} | {seconds:.0f} s |"
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
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHES)
    load_at_start = os.getloadavg()[0]
    logs = BENCH / "out" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    query_records = args.query_records
    if query_records is None:
        cached = any((BENCH / "out").glob("query-1000000-*/ledger.db"))
        query_records = 1_000_000 if cached else 200_000
        if not cached:
            notes.append(
                "bench/query.py ran on 200,000 records, not the 1M of its target: the 1M "
                "ledger was not built in bench/out/ yet (`python -m bench.query` builds it "
                "once)."
            )
    extra = {"query": ["--records", str(query_records)]}
    results = [run_bench(name, extra.get(name, []), logs) for name in chosen]
    for res in results:
        if res["status"] == "missing":
            notes.append(f"bench/{res['name']}.py does not exist yet: skipped.")
    notes.append("Full outputs of each run: bench/out/logs/ (not committed).")
    text = render(results, notes, load_at_start)
    args.output.write_text(text)
    print(text)
    if any(re.match(r"exit|killed", str(r["status"])) for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
