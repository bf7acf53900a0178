"""Building the hub's witness client from its settings: the trust policy file, checked."""

from __future__ import annotations

from ledger.errors import LedgerError
from pilots.errors import PilotError
from pilots.trust import load_trust_policy

from ..errors import ConfigError
from ..hub_ledger import HubLedger
from ..metrics import HubMetrics
from ..settings import HubSettings
from .witnessing import Witnessing


def open_witnessing(
    settings: HubSettings, ledger: HubLedger, metrics: HubMetrics
) -> Witnessing | None:
    """The witness client of ``settings.trust_policy``, or None without one. ConfigError for
    a policy that does not parse, or that does not accept this hub's own log key."""
    path = settings.trust_policy
    if path is None:
        return None
    try:
        policy = load_trust_policy(path)
    except (PilotError, LedgerError, OSError) as exc:
        raise ConfigError(f"trust policy {path}: {exc}") from None
    mine = ledger.signer.verifier
    logs = policy.log_for(settings.origin)
    if policy.logs and not any(log.verifier.encode() == mine.encode() for log in logs):
        raise ConfigError(
            f"trust policy {path} does not list this hub's log key {mine.encode()}"
            f" for origin {settings.origin!r}"
        )
    if not any(w.url for w in policy.witnesses):
        raise ConfigError(f"trust policy {path} names no witness with a URL to submit to")
    witnessing = Witnessing(
        policy,
        mine,
        ledger.checkpoints,
        ledger.reader,
        metrics,
        interval_s=settings.witness_interval_s,
        timeout_s=settings.witness_timeout_s,
        persist=ledger.writer.store_cosigned,
    )
    witnessing.adopt(ledger.reader.quorum_checkpoint())
    return witnessing
