"""The root of the simulators' named errors (each is defined next to what raises it)."""


class SimulatorError(Exception):
    """Base of every error the simulators raise on purpose."""
