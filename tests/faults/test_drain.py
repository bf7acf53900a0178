"""SIGTERM while six agents stream: the hub's whole stop (HTTP, intake, the last commits,
receipts, the broker link) is bounded by ``drain_timeout_s``, says how it ended, and loses
nothing: what it could not receipt, the agents resend to the next hub. On each store."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .world import SETTLE_S, check_log, metric, settle, streaming_world, wait_for

AGENTS = 6
DRAIN_S = 3.0
#: A bound on a hang, not a speed check: the stop is measured against the setting plus
#: this, so a busy machine does not fail the test.
MARGIN_S = 30.0
DRAINED = re.compile(
    r"drained in (?P<took>[\d.]+) s"
    r"|drain cut at (?P<cut>[\d.]+) s with (?P<left>\d+) records unreceipted, they will be resent"
)


def test_sigterm_under_streaming_agents_stops_within_the_drain_setting(
    tmp_path: Path, store_settings: dict[str, Any]
) -> None:
    world = streaming_world(tmp_path, AGENTS, drain_timeout_s=DRAIN_S, **store_settings)
    with world as (_, hub, feeds):
        for feed in feeds:
            feed.feed(20)
        wait_for(
            lambda: metric(hub, "swiftchain_records_accepted_total") >= 300,
            SETTLE_S,
            "records streaming in",
        )
        assert hub.proc is not None
        began = time.monotonic()
        hub.proc.send_signal(signal.SIGTERM)
        try:
            code = hub.proc.wait(DRAIN_S + MARGIN_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the hub did not stop within {DRAIN_S + MARGIN_S}s of SIGTERM:"
                f" {hub.log_text()[-2000:]}"
            ) from None
        stopped_after = time.monotonic() - began
        hub.proc = None
        log = hub.log_text()
        assert code == 0, log[-2000:]
        ended = DRAINED.search(log)
        assert ended is not None, log[-2000:]
        # The hub's own account of the stop stays within its setting.
        assert float(ended["took"] or ended["cut"]) <= DRAIN_S + 1.0, ended[0]
        assert "hub stopped cleanly" in log
        print(f"stopped {stopped_after:.1f}s after SIGTERM: {ended[0]}")

        # Nothing lost: the next hub gets whatever was not receipted.
        hub.start()
        settle(feeds, "after the drain")
        check_log(hub, feeds)
