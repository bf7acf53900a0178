"""How ``make bench`` reads figures: the reference scripts' JSON, wrk's report, ratios to the
reference decided on their mean, bounds on a figure in every round, CPU over a process tree,
and the PostgreSQL rows beside the yardstick their bench measured itself."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from bench import limits
from bench.cpu import descendants, tree_cpu_seconds
from bench.figures import Figure
from bench.ingest import store_figures
from bench.pg_server import Server, backends_cpu_between
from bench.query import parse_wrk
from bench.report import BENCH, COMMANDS, figure_rows, plan

INGEST_JSON = {
    "name": "ingest",
    "rows": [
        {
            "stage": "P end-to-end ingest (1 hub process)",
            "library": "gmqtt + mosquitto + pynacl + sqlite3",
            "median": 10881.8,
            "notes": "n=20000; CPU us/record edge 17 (excl. signing) broker 28 hub 91",
        }
    ],
}
CRYPTO_JSON: dict[str, Any] = {
    "name": "crypto",
    "rows": [
        {"stage": "1 Ed25519 sign", "library": "cryptography", "median": 20110.0},
        {"stage": "1 Ed25519 sign", "library": "pynacl", "median": 24000.0},
        {"stage": "1 Ed25519 verify", "library": "cryptography", "median": 16241.0},
        {"stage": "1 Ed25519 verify", "library": "pynacl", "median": 25836.0},
        {"stage": "1 Ed25519 verify x2 procs", "library": "pynacl", "median": 51164.0},
        {"stage": "1 Ed25519 verify x2 threads", "library": "cryptography", "median": 3e4},
        {"stage": "1 Ed25519 verify x2 threads", "library": "pynacl", "median": 47000.0},
        {"stage": "2 RFC6962 node hash", "library": "hashlib", "median": 900000.0},
        {"stage": "2 RFC6962 node hash", "library": "hashlib .update x3", "median": 7e5},
    ],
}
HTTP_JSON = {
    "name": "http",
    "rows": [
        {"stage": "8 aiohttp GET JSON, 1 worker(s)", "library": "aiohttp asyncio", "median": 9e3},
        {"stage": "8 aiohttp GET JSON, 1 worker(s)", "library": "aiohttp uvloop", "median": 17e3},
        {"stage": "8 aiohttp GET JSON, 2 worker(s)", "library": "aiohttp uvloop", "median": 25e3},
    ],
}
WRK = """Running 4s test @ http://127.0.0.1:49955
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    48.08ms   24.58ms 262.58ms   89.06%
    Req/Sec     1.40k   328.71     1.84k    82.50%
  Latency Distribution
     50%  812.00us
     75%   43.84ms
     90%   66.44ms
     99%    1.02s
  5593 requests in 4.01s, 41.11MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   1394.54
Transfer/sec:     10.25MB
"""


def test_the_reference_figures_are_read_from_each_script_json() -> None:
    assert limits.parse("ingest", INGEST_JSON) == {
        "ingest.records_per_s": 10881.8,
        "ingest.hub_cpu_us": 91.0,
        "ingest.edge_cpu_us": 17.0,
        "ingest.broker_cpu_us": 28.0,
    }
    # Two cores of single-core PyNaCl verifies, not the pool's aggregate; the ledger signs
    # with cryptography and verifies with PyNaCl, so bench/suites.py reads those rows.
    assert limits.parse("crypto", CRYPTO_JSON) == {
        "crypto.verify_x2_per_s": 2 * 25836.0,
        "crypto.verify_per_s": 25836.0,
        "crypto.sign_per_s": 20110.0,
        "crypto.verify_x2_threads_per_s": 47000.0,
        "crypto.node_hash_per_s": 900000.0,
    }
    assert limits.parse("http", HTTP_JSON) == {"http.get_per_s": 17e3}


def test_a_crypto_json_without_the_suites_rows_still_gives_the_ledger_its_figure() -> None:
    rows = [r for r in CRYPTO_JSON["rows"] if r["stage"] == "1 Ed25519 verify"]
    verify_only: dict[str, Any] = {"name": "crypto", "rows": rows}
    assert limits.parse("crypto", verify_only) == {
        "crypto.verify_x2_per_s": 2 * 25836.0,
        "crypto.verify_per_s": 25836.0,
    }
    assert set(limits.parse("crypto", CRYPTO_JSON)) <= set(limits.LEGEND)


def test_wrk_report_gives_rate_percentiles_and_every_error() -> None:
    got = parse_wrk(WRK)
    assert got["searches"] == 5593
    assert got["per_s"] == 1394.54
    assert got["p50_ms"] == 0.812
    assert got["p99_ms"] == 1020.0
    assert got["errors"] == 7 + 5


def _result(name: str, round_: int, *rows: Figure) -> dict[str, object]:
    return {"name": name, "round": round_, "rows": list(rows)}


def test_a_reference_row_is_decided_on_the_mean_of_its_round_ratios() -> None:
    def rate(value: float) -> Figure:
        return Figure(
            "records/s",
            f"{value:,.0f} records/s",
            value=value,
            unit="records/s",
            reference="ingest.records_per_s",
            op=">=",
            bound=1.2,
        )

    refs = {
        ("ingest", 1): {"ingest.records_per_s": 10_000.0},
        ("ingest", 2): {"ingest.records_per_s": 8_000.0},
    }
    results = [_result("ingest", 1, rate(11_000)), _result("ingest", 2, rate(10_800))]
    ((bench, measure, ours, theirs, ratio, target, met),) = figure_rows(results, refs)
    assert (bench, measure) == ("ingest", "records/s")
    assert ours == "11,000 records/s / 10,800 records/s"
    assert theirs == "10,000 records/s / 8,000 records/s"
    assert ratio == "1.10 / 1.35 (mean 1.23)"
    assert (target, met) == ("ratio >= 1.2", True)


def test_without_a_reference_a_ratio_row_is_not_decided() -> None:
    row = Figure("cpu", "90 us", value=90, unit="us", reference="ingest.hub_cpu_us", op="<=",
                 bound=1.2)  # fmt: skip
    ((*_, theirs, ratio, _target, met),) = figure_rows([_result("edge", 1, row)], {})
    assert (theirs, ratio, met) == ("no reference", "-", None)


def test_a_bounded_row_must_meet_its_bound_in_every_round() -> None:
    def p99(ms: float) -> Figure:
        return Figure("p99", f"{ms} ms", value=ms, unit="ms", op="<=", bound=100)

    rows = figure_rows([_result("ingest", 1, p99(90)), _result("ingest", 2, p99(120))], {})
    assert [(r[2], r[5], r[6]) for r in rows] == [("90 ms / 120 ms", "<= 100 ms", False)]


def test_benchmarks_sharing_a_reference_run_beside_one_run_of_it() -> None:
    assert plan(["ingest", "edge", "ledger", "replay"], rounds=2) == [
        ("crypto", ["ledger"]),
        ("ingest", ["ingest", "edge"]),
        (None, ["replay"]),
    ]
    assert plan(["ingest"], rounds=0) == [(None, ["ingest"])]
    assert plan(["ledger", "suites"], rounds=2) == [("crypto", ["suites", "ledger"])]
    # The PostgreSQL benches carry their own yardstick: run once, beside no reference.
    assert plan(["ingest", "edge", "ingest-pg"], rounds=2) == [
        ("ingest", ["ingest", "edge"]),
        (None, ["ingest-pg"]),
    ]


def test_the_postgresql_benches_are_modules_run_with_arguments() -> None:
    for module, _args in COMMANDS.values():
        assert (BENCH / f"{module}.py").exists(), module


def test_a_row_beside_its_own_yardstick_shows_it_and_the_ratio_undecided() -> None:
    row = Figure("records/s", "9,000 records/s", target="report", value=0.9, beside="10,000 "
                 "records/s", ratio="0.90")  # fmt: skip
    ((*_, theirs, ratio, target, met),) = figure_rows([_result("ingest-pg", 1, row)], {})
    assert (theirs, ratio, target, met) == ("10,000 records/s", "0.90", "report", None)


def _round(rate: float, hub_us: float, server_us: float, p99: float) -> dict[str, Any]:
    main = {"records_per_s": rate, "hub_cpu_us_per_record": hub_us, "p99_ms": p99,
            "server_cpu_us_per_record": server_us, "server_backends": 2 if server_us else 0,
            "load": 1.0}  # fmt: skip
    return {"main": main, "latency": {**main, "p50_ms": p99 / 2}}


def test_ingest_on_postgresql_is_read_round_by_round_against_sqlite() -> None:
    args = argparse.Namespace(publishers=4, window=500, latency_window=50)
    rounds = {
        "sqlite": [_round(10_000, 100, 0, 50), _round(8_000, 120, 0, 60)],
        "postgresql": [_round(5_000, 110, 40, 100), _round(6_000, 120, 30, 60)],
    }
    rows = {
        r.measure.split(": ", 1)[-1]: r
        for r in store_figures(args, rounds, Server("u", "15", "on"))
    }
    rate = rows["records/s end to end"]
    assert (rate.result, rate.beside) == (
        "5,000 records/s / 6,000 records/s",
        "10,000 records/s / 8,000 records/s",
    )
    assert rate.ratio == "0.50 / 0.75 (mean 0.62)"
    assert rows["hub CPU per record, all hub processes"].ratio == "1.10 / 1.00 (mean 1.05)"
    # SQLite's store works in the hub's processes, PostgreSQL's in the server's too.
    both = rows["hub + PostgreSQL backends' CPU per record (SQLite: the hub's alone)"]
    assert both.ratio == "1.50 / 1.25 (mean 1.38)"
    assert both.result == "150 us (server 40 us) / 150 us (server 30 us)"


def test_backends_cpu_counts_a_session_opened_between_readings_whole() -> None:
    assert backends_cpu_between({1: 2.0, 2: 5.0}, {1: 3.5, 2: 5.0, 3: 0.25}) == 1.75


def test_a_process_tree_includes_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in descendants(os.getpid())
        _, processes = tree_cpu_seconds(os.getpid())
        assert processes >= 2
    finally:
        child.kill()
        child.wait()
