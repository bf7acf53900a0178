from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.settings import load_settings

MINIMAL = 'pilot = "city-air"\nsource = "station-1"\nkey_file = "keys/s1.key"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "edge.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL))
    assert s.key_file == tmp_path / "conf" / "keys" / "s1.key"
    assert s.outbox_path == tmp_path / "conf" / "edge-outbox.db"
    assert s.broker.url == "mqtt://127.0.0.1:1883"
    assert s.http.host == "127.0.0.1"
    assert s.records_topic == "swiftchain/v1/city-air/station-1/records"
    assert s.receipts_topic == "swiftchain/v1/city-air/station-1/receipts"
    assert s.client_id == "swiftchain-edge-city-air-station-1"


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = MINIMAL + '[broker]\nurl = "mqtt://127.0.0.1:1883"\nusername = "file"\n'
    monkeypatch.setenv("SWIFTCHAIN_EDGE_BROKER__USERNAME", "env")
    monkeypatch.setenv("SWIFTCHAIN_EDGE_BROKER__PASSWORD", "s3cret")
    monkeypatch.setenv("SWIFTCHAIN_EDGE_PUBLISH__WINDOW", "64")
    s = load_settings(write(tmp_path, text))
    assert s.broker.username == "env"
    assert s.broker.password is not None and s.broker.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.publish.window == 64


def test_tls_and_ports_from_the_broker_url(tmp_path: Path) -> None:
    text = MINIMAL + '[broker]\nurl = "mqtts://127.0.0.1"\n[broker.tls]\nca_file = "ca.pem"\n'
    s = load_settings(write(tmp_path, text))
    assert (s.broker.port, s.broker.uses_tls) == (8883, True)
    assert s.broker.tls is not None and s.broker.tls.ca_file == tmp_path / "conf" / "ca.pem"


def test_sensor_topics(tmp_path: Path) -> None:
    text = MINIMAL + (
        "[sensors]\nenabled = true\n"
        '[[sensors.topics]]\ntopic = "sensors/air/+"\ntype = "city.air-quality"\n'
    )
    s = load_settings(write(tmp_path, text))
    assert s.sensors.topics[0].type == "city.air-quality"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('pilot = "x"\n', "source"),
        (MINIMAL.replace("city-air", "Not A Slug"), "pilot"),
        (MINIMAL + "colour = 1\n", "colour"),
        (MINIMAL + '[broker]\nurl = "http://127.0.0.1"\n', "broker"),
        (MINIMAL + "[publish]\nwindow = 0\n", "window"),
        (MINIMAL + "[hub]\nproof_check = 'sometimes'\n", "proof_check"),
        ("pilot = \n", "cannot read|bad edge settings"),
    ],
)
def test_bad_settings_are_one_clear_error(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_settings(write(tmp_path, text))


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file"):
        load_settings(tmp_path / "nope.toml")
