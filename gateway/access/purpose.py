"""Purpose of use, required on every data request.

It travels in one or both of two places:

- bound into the access token, from the client assertion's HL7 UDAP B2B authorization
  extension (``extensions.hl7-b2b.purpose_of_use``: an array of codes), the way standard
  B2B clients send it;
- the ``X-Purpose-Of-Use`` request header: one code.

A code is an HL7 v3 ActReason code from the PurposeOfUse value set (``TREAT``, ``ETREAT``,
``PUBHLTH``, ``HRESCH``...), bare, as ``<system>|<code>`` with the v3-ActReason system, or
as ``urn:oid:2.16.840.1.113883.5.8#<code>`` (the form UDAP's examples use). ``ETREAT`` is
break-glass.

The header may narrow the token's purposes (pick one of them) but never widen them: a
header naming a purpose the token was not issued for is refused.

Two reads take their purpose from the reader's role instead (the audit view, a Consent
read): the codes at the end of this module, recorded in their ``access`` entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pilots.terminology import ACT_REASON_SYSTEM, PURPOSES_OF_USE

from ..errors import BadParameter, Forbidden

HEADER: Final = "X-Purpose-Of-Use"
#: The OID of HL7 v3 ActReason, as UDAP B2B purpose-of-use codes name it.
ACT_REASON_OID: Final = "urn:oid:2.16.840.1.113883.5.8"


class PurposeError(BadParameter):
    code = "purpose_of_use"


class PurposeNotGranted(Forbidden):
    code = "purpose_not_in_token"


def purpose_code(text: str, where: str = HEADER) -> str:
    """The PurposeOfUse code in one written form; raise PurposeError if it is unknown."""
    text = text.strip()
    if text.startswith(ACT_REASON_OID + "#"):
        code = text.removeprefix(ACT_REASON_OID + "#")
    else:
        system, bar, code = text.rpartition("|")
        if bar and system != ACT_REASON_SYSTEM:
            raise PurposeError(
                f"{where} system must be {ACT_REASON_SYSTEM}", code="purpose_unknown"
            )
    if code not in PURPOSES_OF_USE:
        raise PurposeError(
            f"{code[:40]!r} in {where} is not an HL7 v3 PurposeOfUse code"
            " (e.g. TREAT, PUBHLTH, HRESCH)",
            code="purpose_unknown",
        )
    return code


def parse_purpose(value: str | None) -> str:
    """The PurposeOfUse code in a header value; raise PurposeError if missing or unknown."""
    if value is None or not value.strip():
        raise PurposeError(
            f"the {HEADER} header is required: an HL7 v3 PurposeOfUse code such as TREAT",
            code="purpose_missing",
        )
    return purpose_code(value)


def request_purpose(header: str | None, bound: Sequence[str]) -> str:
    """The purpose of one request, from its header and the purposes its token is bound to.

    Without bound purposes the header is required. With them, the header may pick one of
    them; without a header, a token bound to exactly one purpose speaks for itself.
    """
    if not bound:
        return parse_purpose(header)
    if header is None or not header.strip():
        if len(bound) == 1:
            return bound[0]
        raise PurposeError(
            f"this access token is for {len(bound)} purposes of use ({', '.join(bound)}):"
            f" name the one of this request in the {HEADER} header",
            code="purpose_missing",
        )
    code = parse_purpose(header)
    if code not in bound:
        raise PurposeNotGranted(
            f"{HEADER} {code} is not a purpose this access token was issued for"
            f" ({', '.join(bound)}); get a token for it",
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
