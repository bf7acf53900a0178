from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from edge.datatypes import TypeRegistry, import_model
from edge.errors import ConfigError, InvalidInput


class Noise(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    meter: str
    db: float


def test_pilots_can_plug_in_their_own_models() -> None:
    registry = TypeRegistry()
    registry.register("city.noise", Noise)
    noise = registry.resolve("city.noise")
    noise.validate({"meter": "m1", "db": 61.5})
    with pytest.raises(InvalidInput, match="invalid_payload"):
        noise.validate({"meter": "m1"})


def test_models_named_in_settings_are_imported() -> None:
    registry = TypeRegistry.from_settings([], {"city.noise": f"{__name__}:Noise"})
    assert registry.resolve("city.noise").model is Noise


@pytest.mark.parametrize("dotted", ["no.such.module:X", f"{__name__}:Missing", "pathlib:Path"])
def test_bad_model_names_are_config_errors(dotted: str) -> None:
    assert Path  # the last case names a class that is not a pydantic model
    with pytest.raises(ConfigError):
        import_model(dotted)


def test_fhir_types_resolve_to_r4b_models() -> None:
    t = TypeRegistry().resolve("fhir.Observation")
    assert t.is_fhir and t.resource_type == "Observation"
