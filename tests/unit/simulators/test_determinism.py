"""The same seed and parameters give a byte-identical scenario; anything else differs."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from simulators import build_scenario, default_scenario, write_scenario
from simulators.scenario import Scenario
from swiftchain.cli import cli


def test_same_seed_writes_byte_identical_files(tmp_path: Path, demo: Scenario) -> None:
    write_scenario(tmp_path / "a.ndjson", demo)
    write_scenario(tmp_path / "b.ndjson", default_scenario())
    assert (tmp_path / "a.ndjson").read_bytes() == (tmp_path / "b.ndjson").read_bytes()


def test_cli_writes_the_default_scenario(tmp_path: Path, demo: Scenario) -> None:
    out = tmp_path / "scenario.ndjson"
    args = ["simulate", "--seed", "7", "--hours", "24", "--start", "2026-05-04T00:00:00Z"]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == demo.to_bytes()
    assert "chronic-care" in result.output and f"{demo.header.counts.total:,}" in result.output


def test_another_seed_gives_another_scenario() -> None:
    a = build_scenario(seed=1, hours=6, scale="small")
    b = build_scenario(seed=2, hours=6, scale="small")
    assert a.to_bytes() != b.to_bytes()
    assert a.header.seed == 1 and b.header.seed == 2


def test_leaving_out_a_pilot_does_not_change_the_others() -> None:
    everything = build_scenario(seed=3, hours=6, scale="small")
    city = build_scenario(seed=3, hours=6, scale="small", pilots=["traffic-flow", "smart-parking"])
    kept = [e for e in everything.events if e.pilot in ("traffic-flow", "smart-parking")]
    assert [e.model_dump() for e in kept] == [e.model_dump() for e in city.events]
    assert city.header.pilots == ["traffic-flow", "smart-parking"]


def test_cli_refuses_unknown_pilots_and_bad_start(tmp_path: Path) -> None:
    runner = CliRunner()
    out = str(tmp_path / "x.ndjson")
    bad_pilot = runner.invoke(cli, ["simulate", "--pilots", "weather", "--out", out])
    assert bad_pilot.exit_code == 2 and "weather" in bad_pilot.output
    bad_start = runner.invoke(cli, ["simulate", "--start", "2026-05-04", "--out", out])
    assert bad_start.exit_code == 2 and "offset" in bad_start.output
    assert not Path(out).exists()
