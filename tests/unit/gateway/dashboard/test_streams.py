"""The dashboard stream's two rules, as pure functions: how many streams may open (in all and
from one peer address), and what a viewer without the admin token is sent (the counts, not
the access decisions' lines, each about one person's records)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dashboard.routes import TooManyStreams, TooManyStreamsFromPeer, admit
from gateway.dashboard.summary import public_summary


def test_one_peer_gets_its_share_and_others_the_rest() -> None:
    by_peer = {"127.0.0.1": 3}
    admit(3, by_peer, "127.0.0.1", max_streams=32, max_per_peer=4)
    admit(31, {"127.0.0.1": 4}, "127.0.0.2", max_streams=32, max_per_peer=4)
    with pytest.raises(TooManyStreamsFromPeer, match="at most 4 dashboard streams from one") as e:
        admit(4, {"127.0.0.1": 4}, "127.0.0.1", max_streams=32, max_per_peer=4)
    assert e.value.status == 429 and e.value.code == "too_many_streams"
    with pytest.raises(TooManyStreams, match="at most 32 dashboard streams") as full:
        admit(32, {"127.0.0.1": 4}, "127.0.0.2", max_streams=32, max_per_peer=4)
    assert full.value.status == 503


def snapshot() -> dict[str, Any]:
    line = {"index": 7, "client": "php-ehr", "subject": "pt-att…", "decision": "allow"}
    alert = {
        "level": "warning",
        "code": "break_glass_reads",
        "message": "1 break-glass read to review; latest: php-ehr read fhir.Observation of pt-att…",
        "count": 1,
        "latest": line,
    }
    return {
        "ledger": {"size": 9},
        "access": {
            "allow": 5,
            "deny": 2,
            "break_glass": 1,
            "break_glass_reads": 1,
            "break_glass_alert": alert,
            "recent": [line],
            "recent_withheld": False,
            "a_new_field_for_operators": "pt-att…",
        },
        "consents": {"active": 1, "withdrawn": 0, "other": 0},
    }


def test_without_the_admin_token_the_snapshot_keeps_counts_only() -> None:
    full = snapshot()
    public = public_summary(full)
    assert public["access"] == {
        "allow": 5,
        "deny": 2,
        "break_glass": 1,
        "break_glass_reads": 1,
        "break_glass_alert": {
            "level": "warning",
            "code": "break_glass_reads",
            "message": "1 break-glass read to review (details for operators)",
            "count": 1,
        },
        "recent": [],
        "recent_withheld": True,
    }
    assert public["ledger"] == full["ledger"] and public["consents"] == full["consents"]
    assert "pt-att" not in repr(public) and "php-ehr" not in repr(public)
    assert full["access"]["recent"]  # the operators' snapshot is left as it was


def test_without_break_glass_reads_there_is_no_alert() -> None:
    full = snapshot()
    full["access"]["break_glass_alert"] = None
    assert public_summary(full)["access"]["break_glass_alert"] is None
