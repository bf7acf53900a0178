"""The hub's broker link from its settings: mqtts:// and TLS files, full-jitter reconnects."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.ingest.link import MqttLink, client_options
from gateway.ingest.receipts import ReceiptQueue
from gateway.metrics import HubMetrics
from gateway.settings import HubSettings, load_settings
from transport.mqtt import Endpoint, TlsFiles


def test_an_mqtts_url_turns_tls_on_with_port_8883(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        'mqtt_url = "mqtts://broker.example"\n'
        'mqtt_tls_ca_file = "tls/ca.pem"\n'
        'mqtt_tls_cert_file = "tls/hub.pem"\n'
        'mqtt_tls_key_file = "tls/hub.key"\n'
    )
    s = load_settings(config)
    assert s.mqtt_endpoint == Endpoint("broker.example", 8883, True)
    assert s.mqtt_tls == TlsFiles(
        tmp_path / "tls" / "ca.pem", tmp_path / "tls" / "hub.pem", tmp_path / "tls" / "hub.key"
    )


def test_a_tls_file_turns_tls_on_and_plain_mqtt_has_none(tmp_path: Path) -> None:
    tls = HubSettings(mqtt_url="mqtt://127.0.0.1:1884", mqtt_tls_ca_file=tmp_path / "ca.pem")
    assert tls.mqtt_tls == TlsFiles(ca_file=tmp_path / "ca.pem")
    assert HubSettings(mqtt_url="mqtt://127.0.0.1:1884").mqtt_tls is None


def test_tls_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWIFTCHAIN_HUB_MQTT_URL", "mqtts://127.0.0.1:18883")
    monkeypatch.setenv("SWIFTCHAIN_HUB_MQTT_TLS_INSECURE", "true")
    s = load_settings()
    assert s.mqtt_tls == TlsFiles(insecure=True)
    assert (s.mqtt_host, s.mqtt_port) == ("127.0.0.1", 18883)


def test_a_bad_broker_url_says_what_one_looks_like(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('mqtt_url = "https://broker.example"\n')
    with pytest.raises(ConfigError, match="mqtts://host:port"):
        load_settings(config)


def test_unusable_tls_files_are_a_config_error_when_the_hub_is_built(tmp_path: Path) -> None:
    s = HubSettings(mqtt_url="mqtts://127.0.0.1", mqtt_tls_ca_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match=r"MQTT TLS: cannot use the CA file .*missing\.pem"):
        client_options(s)


def test_the_hub_reconnects_with_full_jitter() -> None:
    """The hub once drew its delays from [ceiling/2, ceiling]; full jitter starts at 0."""
    s = HubSettings(mqtt_reconnect_initial_s=0.2, mqtt_reconnect_max_s=15.0)
    metrics = HubMetrics()
    link = MqttLink(s, ReceiptQueue(metrics), metrics)
    for attempt in range(12):
        low = link.backoff.delay(attempt, uniform=lambda lo, hi: lo)
        high = link.backoff.delay(attempt, uniform=lambda lo, hi: hi)
        assert (low, high) == (0.0, pytest.approx(min(15.0, 0.2 * 2**attempt)))


def test_the_hub_keeps_its_session_and_its_inflight_bound() -> None:
    s = HubSettings(mqtt_client_id="hub-a", mqtt_session_expiry_s=600, mqtt_max_inflight=50)
    options = client_options(s)
    assert (options.client_id, options.mqtt5, options.session_expiry_s) == ("hub-a", True, 600)
    assert options.max_inflight == 50 and options.tls is None
