"""One broker-URL rule for the hub's and the agent's settings (``transport.mqtt.broker_url``)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.settings import BrokerSettings
from gateway.settings import HubSettings


@pytest.mark.parametrize("url", ["mqtt://127.0.0.1:1883", "mqtts://broker.city:8883", "tcp://h"])
def test_broker_urls_both_sides_take(url: str) -> None:
    assert HubSettings(mqtt_url=url).mqtt_url == url
    assert BrokerSettings(url=url).url == url


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "mqtt://", "mqtt://host:notaport", "host:1883"])
def test_a_bad_broker_url_is_refused_naming_the_field(url: str) -> None:
    with pytest.raises(ValidationError, match=r"mqtt_url\n.*a broker URL reads"):
        HubSettings(mqtt_url=url)
    with pytest.raises(ValidationError, match=r"url\n.*a broker URL reads"):
        BrokerSettings(url=url)
