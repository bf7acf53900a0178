"""The value every policy and consent evaluation returns: allowed or not, and why.

``reason`` is a stable machine code (for the audit entry, metrics and error bodies);
``detail`` is one sentence for a person. Codes never change meaning; new ones may be added.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    # -- pilot policy (pilots.policy) --------------------------------------------------------
    READ_ALLOWED = "read_allowed"
    BREAK_GLASS = "break_glass"
    PUBLISH_ALLOWED = "publish_allowed"
    CONSENT_ADMIN = "consent_admin"
    AUDITOR = "auditor"
    NOT_A_MEMBER = "not_a_member"
    UNKNOWN_DATA_TYPE = "unknown_data_type"
    UNKNOWN_PURPOSE = "unknown_purpose"
    NO_READ_RULE = "no_read_rule"
    PURPOSE_NOT_ALLOWED = "purpose_not_allowed"
    BREAK_GLASS_NOT_ALLOWED = "break_glass_not_allowed"
    PUBLISH_NOT_ALLOWED = "publish_not_allowed"
    NOT_CONSENT_ADMIN = "not_consent_admin"
    NOT_AUDITOR = "not_auditor"
    # -- consent (pilots.consent) ------------------------------------------------------------
    CONSENT_PERMITS = "consent_permits"
    CONSENT_NOT_REQUIRED = "consent_not_required"
    CONSENT_MISSING = "consent_missing"
    CONSENT_DRAFT = "consent_draft"
    CONSENT_PROPOSED = "consent_proposed"
    CONSENT_REJECTED = "consent_rejected"
    CONSENT_INACTIVE = "consent_inactive"
    CONSENT_ENTERED_IN_ERROR = "consent_entered_in_error"
    CONSENT_STATUS_UNKNOWN = "consent_status_unknown"
    CONSENT_SUBJECT_MISMATCH = "consent_subject_mismatch"
    CONSENT_WRONG_SCOPE = "consent_wrong_scope"
    CONSENT_NO_PROVISION = "consent_no_provision"
    CONSENT_NOT_YET_VALID = "consent_not_yet_valid"
    CONSENT_EXPIRED = "consent_expired"
    CONSENT_ACTOR_NOT_PERMITTED = "consent_actor_not_permitted"
    CONSENT_PURPOSE_NOT_PERMITTED = "consent_purpose_not_permitted"
    CONSENT_CLASS_NOT_PERMITTED = "consent_class_not_permitted"
    CONSENT_CODE_NOT_PERMITTED = "consent_code_not_permitted"
    CONSENT_ACTION_NOT_PERMITTED = "consent_action_not_permitted"
    CONSENT_DATA_PERIOD = "consent_data_period"
    CONSENT_DENIED = "consent_denied"
    # -- policy and consent together (pilots.access) -----------------------------------------
    BREAK_GLASS_OVERRIDE = "break_glass_override"
    BREAK_GLASS_AFTER_WITHDRAWAL = "break_glass_after_withdrawal"
    CONSENT_DENIES_BREAK_GLASS = "consent_denies_break_glass"
    CONSENT_WITHDRAWN_DENIES_BREAK_GLASS = "consent_withdrawn_denies_break_glass"
    # -- who may change a consent (pilots.consent_authority) ---------------------------------
    CONSENT_GRANT = "consent_grant"
    CONSENT_UPDATE = "consent_update"
    CONSENT_WITHDRAW = "consent_withdraw"
    ROLE_MAY_NOT_RECORD_CONSENT = "role_may_not_record_consent"
    CONSENT_EVIDENCE_MISSING = "consent_evidence_missing"
    CONSENT_ORGANIZATION_MISMATCH = "consent_organization_mismatch"
    CONSENT_NOT_CUSTODIAN = "consent_not_custodian"
    CONSENT_CUSTODIAN_UNKNOWN = "consent_custodian_unknown"
    CONSENT_WITHDRAWN_FINAL = "consent_withdrawn_final"
    CONSENT_WIDENING_NEEDS_GRANT = "consent_widening_needs_grant"
    # -- who may write about a subject (pilots.ingest) ---------------------------------------
    SOURCE_OF_CUSTODIAN = "source_of_custodian"
    SOURCE_NAMED_BY_CONSENT = "source_named_by_consent"
    SOURCE_NOT_PERMITTED = "source_not_permitted"


@dataclass(frozen=True, slots=True)
class Decision:
    """An allow or deny, its reason code and a sentence saying why.

    ``break_glass`` is true when the access is an emergency (ETREAT) read that the pilot
    allows: the hub must flag it in the ``access`` entry.
    """

    allowed: bool
    reason: Reason
    detail: str
    break_glass: bool = False

    @classmethod
    def allow(cls, reason: Reason, detail: str, *, break_glass: bool = False) -> Decision:
        return cls(True, reason, detail, break_glass)

    @classmethod
    def deny(cls, reason: Reason, detail: str, *, break_glass: bool = False) -> Decision:
        return cls(False, reason, detail, break_glass)

    def __bool__(self) -> bool:
        return self.allowed

    def as_dict(self) -> dict[str, object]:
        """The JSON shape for audit entries and error bodies."""
        return {
            "allowed": self.allowed,
            "reason": self.reason.value,
            "detail": self.detail,
            "break_glass": self.break_glass,
        }
