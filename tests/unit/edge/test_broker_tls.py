"""The agent's broker link from its settings: mqtts://, the [broker.tls] files, and a clear
error for files that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.link import client_options
from edge.settings import BrokerSettings, TlsSettings
from transport.mqtt import Endpoint, TlsFiles


def test_mqtts_without_files_verifies_against_the_system_cas() -> None:
    broker = BrokerSettings(url="mqtts://broker.example")
    assert broker.endpoint == Endpoint("broker.example", 8883, True)
    assert broker.tls_files == TlsFiles()
    assert client_options(broker, "edge-1").tls is not None


def test_a_tls_section_turns_tls_on_for_an_mqtt_url(tmp_path: Path) -> None:
    broker = BrokerSettings(
        url="mqtt://127.0.0.1:1884", tls=TlsSettings(ca_file=tmp_path / "ca.pem", insecure=True)
    )
    assert broker.tls_files == TlsFiles(ca_file=tmp_path / "ca.pem", insecure=True)
    assert BrokerSettings(url="mqtt://127.0.0.1:1884").tls_files is None


def test_unusable_tls_files_are_a_config_error(tmp_path: Path) -> None:
    broker = BrokerSettings(
        url="mqtts://127.0.0.1", tls=TlsSettings(cert_file=tmp_path / "edge.pem")
    )
    with pytest.raises(ConfigError, match=r"broker TLS: cannot use the client certificate"):
        client_options(broker, "edge-1")


def test_the_sensor_client_acknowledges_by_hand() -> None:
    broker = BrokerSettings()
    assert client_options(broker, "s", manual_acks=True).manual_acks
    assert not client_options(broker, "s").manual_acks
