"""Signed city-air records for the hub's tests, and edits that break one part of a record."""

from __future__ import annotations

import json
from typing import Any

from ledger.envelope import SignedRecord, seal
from ledger.keys import PrivateKey
from tests.support.hub import records_topic

PILOT, SOURCE, TYPE = "city-air", "station-1", "city.air-quality"
TOPIC = records_topic(PILOT, SOURCE)


def make(key: PrivateKey, seq: int, **kw: Any) -> SignedRecord:
    """Record ``seq`` of the city-air station, signed (and committed) in ``key``'s suite."""
    fields: dict[str, Any] = {
        "pilot": PILOT,
        "source": SOURCE,
        "seq": seq,
        "type": TYPE,
        "payload": {"pm25": seq},
        "signing_key": key,
    }
    fields.update(kw)
    return seal(**fields)


def edit(rec: SignedRecord, part: str, **changes: Any) -> bytes:
    doc = json.loads(rec.to_wire())
    if part == "sig":
        doc["sig"] = changes["sig"]
    else:
        doc[part].update(changes)
    return json.dumps(doc).encode()
