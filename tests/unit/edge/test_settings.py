from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.settings import load_settings
from ledger.suite import SUITES, Suite

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


def test_relay_devices_from_a_table_and_a_directory(tmp_path: Path, suite: Suite) -> None:
    from edge.agent import load_relay
    from ledger.keys import key_id, write_key_pair

    conf = tmp_path / "conf"
    one = write_key_pair(conf / "devices" / "hd-1.key", suite=suite)  # hd-1.key.pub
    two = write_key_pair(conf / "elsewhere" / "hd-2.key", suite=suite)
    (conf / "devices" / "hd-3.pub").write_bytes((conf / "elsewhere" / "hd-2.key.pub").read_bytes())
    text = MINIMAL + '\n[relay]\ndevices_dir = "devices"\n'
    text += 'devices = { "hd-2" = "elsewhere/hd-2.key.pub" }\n'
    s = load_settings(write(tmp_path, text))
    assert s.relay.devices_dir == conf / "devices"
    assert s.relay.devices == {"hd-2": conf / "elsewhere" / "hd-2.key.pub"}
    relay = load_relay(s.pilot, s.source, s.relay, suite)
    assert relay is not None and relay.suite is suite
    assert relay.key_ids == {
        "hd-1": key_id(one.public_key()),
        "hd-2": key_id(two.public_key()),
        "hd-3": key_id(two.public_key()),
    }
    assert load_relay(s.pilot, s.source, load_settings(write(tmp_path, MINIMAL)).relay) is None


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ('devices_dir = "nowhere"', "not a directory"),
        ('devices = { "hd-1" = "missing.pub" }', "device hd-1"),
        ('devices = { "station-1" = "d.pub" }', "own source"),
    ],
)
def test_unusable_relay_settings_are_config_errors(tmp_path: Path, table: str, match: str) -> None:
    from edge.agent import load_relay
    from ledger.keys import write_key_pair

    write_key_pair(tmp_path / "conf" / "d")
    (tmp_path / "conf" / "d.pub").write_bytes((tmp_path / "conf" / "d.pub").read_bytes())
    s = load_settings(write(tmp_path, MINIMAL + f"\n[relay]\n{table}\n"))
    with pytest.raises(ConfigError, match=match):
        load_relay(s.pilot, s.source, s.relay)


def test_a_relay_device_of_another_suite_is_a_config_error(tmp_path: Path, suite: Suite) -> None:
    from edge.agent import load_relay
    from ledger.keys import write_key_pair

    other = next(s for s in SUITES.values() if s is not suite)
    write_key_pair(tmp_path / "conf" / "devices" / "hd-1.key", suite=other)
    s = load_settings(write(tmp_path, MINIMAL + '\n[relay]\ndevices_dir = "devices"\n'))
    with pytest.raises(ConfigError, match=f"hd-1.*{suite.name}"):
        load_relay(s.pilot, s.source, s.relay, suite)
