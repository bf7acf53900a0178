"""What can go wrong between the hub's processes."""

from __future__ import annotations

from ..errors import HubError


class ChannelError(HubError):
    """A frame on the front-end/sequencer channel is malformed, or the peer went away."""


class PlanConflict(ChannelError):
    """A registry change was planned on a registry another front end changed meanwhile:
    plan it again on the registry as it is now."""
