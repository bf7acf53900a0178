"""Code systems the pilots speak: HL7 v3 PurposeOfUse, LOINC, FHIR resource types, and our
own data type ids. Pure lookups and checks, no I/O."""

from __future__ import annotations

from functools import cache

#: ``Coding.system`` of HL7 v3 ActReason, the code system of the PurposeOfUse value set
#: (used in ``Consent.provision.purpose`` and in SMART/IHE purpose-of-use claims).
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
#: ``Coding.system`` for FHIR resource type names (``Consent.provision.class``).
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"
#: ``Coding.system`` for our data type ids (``city.air-quality``, ``fhir.Observation``) when
#: a Consent's ``provision.class`` names them.
DATA_TYPE_SYSTEM = "urn:swiftchain:data-type"
LOINC_SYSTEM = "http://loinc.org"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

#: Break-glass: "emergency treatment" (v3 ActReason ETREAT). A read for this purpose is
#: allowed only where the pilot says so, and is flagged in the audit.
BREAK_GLASS = "ETREAT"

#: The PurposeOfUse codes (v3 ActReason, value set v3-PurposeOfUse) we accept, with their
#: display names. Codes are compared exactly: the hierarchy (e.g. CLINTRCH under HRESCH)
#: gives no implied permission; a pilot lists every purpose it allows.
PURPOSES_OF_USE: dict[str, str] = {
    # treatment
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "BTG": "break the glass",
    "ERTREAT": "emergency room treatment",
    "CAREMGT": "care management",
    "CLINTRL": "clinical trial",
    "COC": "coordination of care",
    "POPHLTH": "population health",
    # payment
    "HPAYMT": "healthcare payment",
    "CLMATTCH": "claim attachment",
    "COVAUTH": "coverage authorization",
    "COVERAGE": "coverage under policy or program",
    "ELIGDTRM": "eligibility determination",
    "ELIGVER": "eligibility verification",
    "ENROLLM": "enrollment",
    "REMITADV": "remittance advice",
    # operations
    "HOPERAT": "healthcare operations",
    "DONAT": "donation",
    "FRAUD": "fraud",
    "GOV": "government",
    "HACCRED": "health accreditation",
    "HCOMPL": "health compliance",
    "HDECD": "decedent",
    "HDIRECT": "directory",
    "HDM": "healthcare delivery management",
    "HLEGAL": "legal",
    "HOUTCOMS": "health outcome measure",
    "HPRGRP": "health program reporting",
    "HQUALIMP": "health quality improvement",
    "HSYSADMIN": "health system administration",
    "LABELING": "labeling",
    "METAMGT": "metadata management",
    "MEMADMIN": "member administration",
    "PATADMIN": "patient administration",
    "PATSFTY": "patient safety",
    "PERFMSR": "performance measure",
    "RECORDMGT": "records management",
    "SYSDEV": "system development",
    "HTEST": "test health data",
    "TRAIN": "training",
    "HMARKT": "healthcare marketing",
    # research
    "HRESCH": "healthcare research",
    "BIORCH": "biomedical research",
    "CLINTRCH": "clinical trial research",
    "DSRCH": "disease specific research",
    "POARCH": "population origins or ancestry research",
    "TRANSRCH": "translational healthcare research",
    # public health
    "PUBHLTH": "public health",
    "DISASTER": "disaster",
    "THREAT": "threat",
    # patient and their representatives
    "PATRQT": "patient requested",
    "FAMRQT": "family requested",
    "PWATRNY": "power of attorney",
    "SUPNWK": "support network",
}


def is_purpose_of_use(code: str) -> bool:
    return code in PURPOSES_OF_USE


def loinc_check_digit(digits: str) -> int:
    """The LOINC mod-10 check digit of the part before the hyphen (``8480`` -> 6).

    LOINC's published algorithm: double the number formed by the odd positions counted
    from the right, put the even positions in front of it, add all the digits, and take
    the distance to the next multiple of ten.
    """
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{digits!r} is not a run of digits")
    from_right = digits[::-1]
    odd = from_right[0::2][::-1]
    even = from_right[1::2][::-1]
    joined = even + str(int(odd) * 2)
    return -sum(int(d) for d in joined) % 10


def is_loinc_code(code: str) -> bool:
    """``NNNNN-C`` with a correct check digit C (LOINC codes are 1-7 digits, hyphen, digit)."""
    number, sep, check = code.partition("-")
    if not sep or not (1 <= len(number) <= 7) or len(check) != 1 or not check.isdigit():
        return False
    if not number.isascii() or not number.isdigit():
        return False
    return loinc_check_digit(number) == int(check)


@cache
def is_fhir_resource_type(name: str) -> bool:
    """Whether ``name`` is a FHIR R4B resource type (as fhir.resources.R4B knows them)."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource

    if not name[:1].isupper() or not name.isalpha():
        return False
    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError, AttributeError, ImportError, ModuleNotFoundError):
        return False
    return isinstance(model, type) and issubclass(model, Resource)
