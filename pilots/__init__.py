"""Pilot definitions (YAML + pydantic models) and the pure decisions made from them:
policy (:mod:`pilots.policy`), consent (:mod:`pilots.consent`), both together
(:mod:`pilots.access`), who may change a consent (:mod:`pilots.consent_authority`) and who
may write about its patient (:mod:`pilots.ingest`). Imports ``ledger`` and nothing else of
ours."""

from .access import decide_access
from .consent import (
    ProvisionRule,
    consent_hash,
    decide_consent,
    make_consent,
    parse_consent,
    with_status,
)
from .consent_authority import StoredConsent, decide_consent_change
from .decision import Decision, Reason
from .errors import ConsentError, PilotDefinitionError, PilotError, Problem, UnknownPilot
from .ingest import decide_writer
from .loader import load_pilot, load_pilot_text
from .models import ConsentRecordRule, DataType, Member, Pilot, PublishRule, ReadRule, Role
from .policy import (
    allowed_purposes,
    can_audit,
    can_manage_consent,
    decide_publish,
    decide_read,
    readable_types,
    roles_of,
)
from .registry import get_pilot, load_pilots, packaged_definitions

__all__ = [
    "ConsentError",
    "ConsentRecordRule",
    "DataType",
    "Decision",
    "Member",
    "Pilot",
    "PilotDefinitionError",
    "PilotError",
    "Problem",
    "ProvisionRule",
    "PublishRule",
    "ReadRule",
    "Reason",
    "Role",
    "StoredConsent",
    "UnknownPilot",
    "allowed_purposes",
    "can_audit",
    "can_manage_consent",
    "consent_hash",
    "decide_access",
    "decide_consent",
    "decide_consent_change",
    "decide_publish",
    "decide_read",
    "decide_writer",
    "get_pilot",
    "load_pilot",
    "load_pilot_text",
    "load_pilots",
    "make_consent",
    "packaged_definitions",
    "parse_consent",
    "readable_types",
    "roles_of",
    "with_status",
]
