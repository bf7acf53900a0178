"""The reference yardsticks (the *limits* folder: lean one-stage implementations of the hub's
work, see its README.md), run beside our benchmarks so a figure of ours reads as a ratio to
what the same machine did in the same minutes.

The folder is ``$SWIFTCHAIN_LIMITS``, else ``<repo>/../shared/limits``, else
``/work/shared/limits``. Its scripts run in their own venv (``/tmp/limits/venv``, made here
per the folder's README when missing); each prints rows and writes JSON, which we read.
Figures, by the names bench rows give as their ``reference``:

- ``ingest.records_per_s``, ``ingest.hub_cpu_us``, ``ingest.edge_cpu_us``,
  ``ingest.broker_cpu_us``: bench_ingest.py (edge -> Mosquitto -> one lean hub process);
- ``http.get_per_s``: bench_http.py, a trivial aiohttp JSON GET under wrk, 1 worker, uvloop;
- ``crypto.verify_x2_per_s``: 2 x single-core PyNaCl Ed25519 verify/s of bench_crypto.py;
- ``crypto.verify_per_s``, ``crypto.sign_per_s``, ``crypto.verify_x2_threads_per_s``,
  ``crypto.node_hash_per_s``: bench_crypto.py's single-core PyNaCl verify/s, cryptography
  sign/s, PyNaCl verify/s on 2 threads, and SHA-256 RFC 6962 node hashes/s (bench/suites.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path("/tmp/limits/venv")
PACKAGES = ("cryptography", "pynacl", "rfc8785", "orjson", "msgspec", "gmqtt", "aiohttp", "uvloop")
#: Each script with the arguments and environment that keep ``make bench`` bounded: the
#: figures we read are medians over the repeats each script makes.
SCRIPTS: dict[str, tuple[list[str], dict[str, str]]] = {
    # 3 runs of 20,000 records (the README's size), ~10 s in all.
    "ingest": (["bench_ingest.py", "20000"], {"LIMITS_REPEATS": "3"}),
    # 4 configurations x (warm-up + 2) x 5 s of wrk, ~1 min; we read 1 worker, uvloop.
    "http": (["bench_http.py"], {"LIMITS_REPEATS": "2", "LIMITS_WRK_SECONDS": "5"}),
    "crypto": (["bench_crypto.py"], {"LIMITS_REPEATS": "3"}),
}
TIMEOUT_S = 400
#: The fixed loopback ports the scripts listen on: one run at a time per machine, so we wait
#: (up to PORT_WAIT_S) while another engineer's run holds one.
PORTS = {"ingest": 18860, "http": 18840}
PORT_WAIT_S = 180.0


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port_free(name: str) -> bool:
    """Until no other run of script ``name`` listens on its port; False if one still does."""
    port = PORTS.get(name)
    deadline = time.monotonic() + PORT_WAIT_S
    while port is not None and _port_busy(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def folder() -> Path | None:
    """The limits folder, or None when there is none on this machine."""
    given = os.environ.get("SWIFTCHAIN_LIMITS")
    candidates = [Path(given)] if given else []
    candidates += [ROOT.parent / "shared" / "limits", Path("/work/shared/limits")]
    for path in candidates:
        if (path / "common.py").exists():
            return path.resolve()
    return None


def ensure_venv() -> Path:
    """The reference's interpreter; the venv is made (per its README) if missing."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import nacl, gmqtt, aiohttp, uvloop, orjson, msgspec, rfc8785"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"== setting up the reference's venv in {VENV}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES], check=True, timeout=900
    )
    return python


@dataclass
class RefRun:
    """One run of one reference script: its figures by name, or why there are none."""

    script: str
    figures: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "ok"
    output: str = ""


def run(name: str, limits: Path, python: Path, logs: Path, round_: int) -> RefRun:
    """Run reference script ``name`` (a key of SCRIPTS) once and read its JSON."""
    argv, env = SCRIPTS[name]
    result = RefRun(" ".join(argv))
    with tempfile.TemporaryDirectory(prefix="limits-", dir=_results_root()) as out:
        # A results folder of our own: another engineer's run on this machine must not
        # overwrite the JSON between the script writing it and us reading it.
        environ = {**os.environ, **env, "LIMITS_RESULTS": out}
        print(f"== reference {name}: {' '.join(argv)} (round {round_})", flush=True)
        if not wait_for_port_free(name):
            result.status = f"port {PORTS[name]} held by another run for {PORT_WAIT_S:.0f} s"
            return result
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [str(python), *argv],
                cwd=limits,
                env=environ,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
            result.output = proc.stdout + proc.stderr
            if proc.returncode != 0:
                result.status = f"exit {proc.returncode}"
        except subprocess.TimeoutExpired as exc:
            result.status = f"killed after {TIMEOUT_S} s"
            result.output = str(exc.stdout or "") + str(exc.stderr or "")
        result.seconds = time.monotonic() - started
        (logs / f"limits-{name}-{round_}.log").write_text(result.output)
        print(result.output[-1500:], flush=True)
        path = Path(out) / f"{name}.json"
        if path.exists():
            try:
                result.figures = parse(name, json.loads(path.read_text()))
            except (KeyError, ValueError, StopIteration) as exc:
                result.status = f"unreadable JSON ({exc})"
        elif result.status == "ok":
            result.status = "no JSON written"
    return result


def _results_root() -> Path:
    root = Path(os.environ.get("LIMITS_RESULTS", "/tmp/limits/results"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _rows(data: dict[str, object], stage: str, library: str) -> list[dict[str, object]]:
    rows = data["rows"]
    assert isinstance(rows, list)
    return [r for r in rows if r["stage"] == stage and r["library"] == library]


def _row(data: dict[str, object], stage: str, library: str) -> dict[str, object]:
    return next(iter(_rows(data, stage, library)))


def parse(name: str, data: dict[str, object]) -> dict[str, float]:
    """The figures we read against from one script's JSON."""
    if name == "ingest":
        rows = data["rows"]
        assert isinstance(rows, list)
        row = rows[0]
        cpu = dict(re.findall(r"(edge|broker|hub) (\d+(?:\.\d+)?)", str(row["notes"])))
        return {
            "ingest.records_per_s": float(row["median"]),
            "ingest.hub_cpu_us": float(cpu["hub"]),
            "ingest.edge_cpu_us": float(cpu["edge"]),
            "ingest.broker_cpu_us": float(cpu["broker"]),
        }
    if name == "http":
        row = _row(data, "8 aiohttp GET JSON, 1 worker(s)", "aiohttp uvloop")
        return {"http.get_per_s": float(str(row["median"]))}
    if name == "crypto":
        row = _row(data, "1 Ed25519 verify", "pynacl")
        verify = float(str(row["median"]))
        figures = {"crypto.verify_x2_per_s": 2 * verify, "crypto.verify_per_s": verify}
        # bench/suites.py's: read when the script's JSON has them, the others regardless.
        for figure, (stage, library) in CRYPTO_ROWS.items():
            found = _rows(data, stage, library)
            if found:
                figures[figure] = float(str(found[0]["median"]))
        return figures
    raise KeyError(name)


#: bench_crypto.py's rows, (stage, library), that bench/suites.py reads its Ed25519 figures
#: against: the ledger signs with cryptography and verifies with libsodium (PyNaCl).
CRYPTO_ROWS = {
    "crypto.sign_per_s": ("1 Ed25519 sign", "cryptography"),
    "crypto.verify_x2_threads_per_s": ("1 Ed25519 verify x2 threads", "pynacl"),
    "crypto.node_hash_per_s": ("2 RFC6962 node hash", "hashlib"),
}


#: What each reference figure is, for the report's legend.
LEGEND = {
    "ingest.records_per_s": "bench_ingest.py 20000: records/s end to end (median of 3)",
    "ingest.hub_cpu_us": "bench_ingest.py: the lean hub's CPU us per record",
    "ingest.edge_cpu_us": "bench_ingest.py: the lean edge's CPU us per record",
    "ingest.broker_cpu_us": "bench_ingest.py: Mosquitto's CPU us per record",
    "http.get_per_s": "bench_http.py: trivial aiohttp GET/s, 1 worker, uvloop, wrk -t1 -c64",
    "crypto.verify_x2_per_s": "bench_crypto.py: 2 x single-core PyNaCl Ed25519 verify/s",
    "crypto.verify_per_s": "bench_crypto.py: single-core PyNaCl Ed25519 verify/s",
    "crypto.sign_per_s": "bench_crypto.py: single-core cryptography Ed25519 sign/s",
    "crypto.verify_x2_threads_per_s": "bench_crypto.py: PyNaCl Ed25519 verify/s, 2 threads",
    "crypto.node_hash_per_s": "bench_crypto.py: RFC 6962 node hashes/s, sha256(0x01+a+b)",
}
