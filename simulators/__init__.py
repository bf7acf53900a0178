"""Deterministic synthetic city and patient data, written as scenario files.

``build_scenario(seed, start, hours, pilots, scale)`` makes one (pure: the same arguments give
byte-identical files); ``default_scenario()`` is the demo's; :mod:`simulators.scenario`
documents the file format and reads and writes it.
"""

from .build import build_scenario, default_scenario
from .devices import device_ids
from .scenario import Scenario, ScenarioError, read_scenario, write_scenario

__all__ = [
    "Scenario",
    "ScenarioError",
    "build_scenario",
    "default_scenario",
    "device_ids",
    "read_scenario",
    "write_scenario",
]
