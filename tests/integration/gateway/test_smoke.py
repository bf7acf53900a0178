from __future__ import annotations

from ledger.envelope import seal
from ledger.keys import load_private_key
from tests.support.hub import MqttPeer, ThreadHub


async def test_accepted_receipt(running_hub: ThreadHub) -> None:
    key_path, _kid = running_hub.register_source("city-air", "station-1", ["city.air-quality"])
    key = load_private_key(key_path)
    rec = seal(
        pilot="city-air",
        source="station-1",
        seq=1,
        type="city.air-quality",
        payload={"pm25": 3},
        signing_key=key,
    )
    async with MqttPeer(running_hub.mqtt_url) as peer:
        r = await peer.send(rec)
    assert r["status"] == "accepted", r
