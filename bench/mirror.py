"""Mirror benchmark (``make bench``): catch-up entries/s of ``swiftchain mirror run`` from a
real hub serving a 100,000-record ledger over HTTP on 127.0.0.1, beside ``ledger verify``'s
rate on the same file in the same run (both check every leaf hash, the tree and every
Ed25519 record signature; the mirror also fetches pages of 1000 and a consistency proof for
each, and commits each page durably).

    .venv/bin/python -m bench.mirror [--records N] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_rows  # noqa: E402
from ledger.verify import verify_ledger  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.mirror import (  # noqa: E402
    MirrorProcess,
    build_hub_dir,
    built_hub,
    make_mirror,
    wait_for,
)

#: The catch-up rate wanted, as a share of ``ledger verify``'s on the same file.
TARGET_RATIO = 0.25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        build_hub_dir(work / "hub", args.records)
        print(f"built {args.records:,} records in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        report = verify_ledger(work / "hub" / "ledger.db")
        verify_s = time.perf_counter() - started
        assert report.ok, report.problems
        verify_rate = report.size / verify_s
        print(f"ledger verify: {report.size:,} entries in {verify_s:.2f}s ({verify_rate:,.0f}/s)")
        (work / "broker").mkdir()
        broker = Mosquitto(work / "broker")
        broker.start()
        try:
            with built_hub(work / "hub", broker.url) as hub:
                mirror = MirrorProcess(make_mirror(work / "mirror", hub), poll_s=0.05)
                started = time.perf_counter()
                mirror.start()
                total = report.size
                wait_for(lambda: mirror.status()["verified"] == total, "caught up", 1800)
                catch_up_s = time.perf_counter() - started
                mirror.stop()
        finally:
            broker.stop()
    rate = total / catch_up_s
    ratio = rate / verify_rate
    print(f"mirror catch-up: {total:,} entries in {catch_up_s:.2f}s ({rate:,.0f}/s)")
    print(f"ratio to ledger verify: {ratio:.2f}")
    if args.json:
        write_rows(
            args.json,
            [
                (
                    f"mirror catch-up, {total:,} entries over HTTP",
                    f"{rate:,.0f} entries/s ({ratio:.2f} x ledger verify's {verify_rate:,.0f}/s)",
                    f">= {TARGET_RATIO} x ledger verify",
                    ratio >= TARGET_RATIO,
                )
            ],
        )


if __name__ == "__main__":
    main()
