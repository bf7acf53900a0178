"""Purpose of use, required on every data request.

One mechanism: the ``X-Purpose-Of-Use`` request header carries one HL7 v3 ActReason code
from the PurposeOfUse value set (``TREAT``, ``ETREAT``, ``PUBHLTH``, ``HRESCH``...), bare or
as ``<system>|<code>`` with the v3-ActReason system. ``ETREAT`` is break-glass.

Two reads take their purpose from the reader's role instead (the audit view and a Consent
read): the codes below, recorded in their ``access`` entries.
"""

from __future__ import annotations

from typing import Final

from pilots.terminology import ACT_REASON_SYSTEM, PURPOSES_OF_USE

from ..errors import BadParameter

HEADER: Final = "X-Purpose-Of-Use"


class PurposeError(BadParameter):
    code = "purpose_of_use"


def parse_purpose(value: str | None) -> str:
    """The PurposeOfUse code in a header value; raise PurposeError if missing or unknown."""
    if value is None or not value.strip():
        raise PurposeError(
            f"the {HEADER} header is required: an HL7 v3 PurposeOfUse code such as TREAT",
            code="purpose_missing",
        )
    text = value.strip()
    system, bar, code = text.rpartition("|")
    if bar and system != ACT_REASON_SYSTEM:
        raise PurposeError(f"{HEADER} system must be {ACT_REASON_SYSTEM}", code="purpose_unknown")
    if code not in PURPOSES_OF_USE:
        raise PurposeError(
            f"{code[:40]!r} is not an HL7 v3 PurposeOfUse code (e.g. TREAT, PUBHLTH, HRESCH)",
            code="purpose_unknown",
        )
    return code


# Reads whose purpose is the reader's mandate in the pilot, not a header: the purpose of use
# their ``access`` entry records (HL7 v3 PurposeOfUse codes, as the header would carry).

#: An auditor reading the access log about a person, or a Consent: health compliance.
AUDIT_PURPOSE: Final = "HCOMPL"
#: A consent administrator reading a Consent: patient administration (the purpose the
#: pilots' read rules give consent administrators for ``fhir.Consent``).
CONSENT_ADMIN_PURPOSE: Final = "PATADMIN"
#: A consent administrator reading who accessed a person's data: the person's own audit
#: view, which only the person (through the consent administrator, their advocate) asks for.
OWN_AUDIT_PURPOSE: Final = "PATRQT"
