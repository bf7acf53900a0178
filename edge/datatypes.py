"""The pilot's data types and how each is validated.

A type id maps to a validator: ``fhir.<ResourceType>`` to the fhir.resources R4B model, the
city sensor types to the pydantic models in :mod:`edge.city`, and further types to any
pydantic model named in settings (``type_models``), which is where pilot definitions will
plug their own in. ``types`` in settings restricts the agent to the pilot's list.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ledger.envelope import describe_validation_error

from .city import CITY_MODELS
from .errors import ConfigError, InvalidInput, UnknownType
from .fhir import fhir_model, validate_resource

FHIR_PREFIX = "fhir."


@dataclass(frozen=True)
class DataType:
    """One type: FHIR (``resource_type`` set; may be about a person) or a plain model."""

    type_id: str
    model: type[BaseModel] | None = None
    resource_type: str | None = None

    @property
    def is_fhir(self) -> bool:
        return self.resource_type is not None

    def validate(self, payload: dict[str, Any]) -> None:
        """Raise InvalidInput unless ``payload`` is a valid value of this type."""
        if self.resource_type is not None:
            validate_resource(payload, self.resource_type)
            return
        assert self.model is not None
        try:
            self.model.model_validate(payload)
        except ValidationError as exc:
            raise InvalidInput(
                "invalid_payload", describe_validation_error(exc), where=self.type_id
            ) from None


class TypeRegistry:
    """Type id -> DataType, optionally limited to the pilot's declared types."""

    def __init__(
        self,
        models: Mapping[str, type[BaseModel]] | None = None,
        *,
        allowed: Collection[str] = (),
        fhir: bool = True,
    ) -> None:
        self._models: dict[str, type[BaseModel]] = dict(CITY_MODELS if models is None else models)
        self._allowed = frozenset(allowed)
        self._fhir = fhir
        self._cache: dict[str, DataType] = {}

    def register(self, type_id: str, model: type[BaseModel]) -> None:
        self._models[type_id] = model
        self._cache.pop(type_id, None)

    def resolve(self, type_id: str) -> DataType:
        found = self._cache.get(type_id)
        if found is not None:
            return found
        if self._allowed and type_id not in self._allowed:
            raise UnknownType(type_id)
        if type_id in self._models:
            found = DataType(type_id, model=self._models[type_id])
        elif self._fhir and type_id.startswith(FHIR_PREFIX):
            resource_type = type_id[len(FHIR_PREFIX) :]
            if fhir_model(resource_type) is None:
                raise UnknownType(type_id)
            found = DataType(type_id, resource_type=resource_type)
        else:
            raise UnknownType(type_id)
        self._cache[type_id] = found
        return found

    @classmethod
    def from_settings(cls, types: Collection[str], type_models: Mapping[str, str]) -> TypeRegistry:
        """The registry the settings describe; ConfigError for models that do not import."""
        registry = cls(allowed=types)
        for type_id, dotted in type_models.items():
            registry.register(type_id, import_model(dotted))
        return registry


def import_model(dotted: str) -> type[BaseModel]:
    """``package.module:Model`` -> the pydantic model class."""
    module_name, _, attr = dotted.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot import data type model {dotted!r}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise ConfigError(f"{dotted!r} is not a pydantic model")
    return found
