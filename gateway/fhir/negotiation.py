"""Which representation a FHIR request may get: this hub answers JSON only
(``application/fhir+json``). A request that accepts none of its JSON forms, by ``Accept``
(RFC 9110 12.5.1) or by ``_format`` (FHIR R4B 3.1.0.1.6, which overrides ``Accept``), gets a
406 OperationOutcome rather than JSON it did not ask for. Pure functions."""

from __future__ import annotations

#: Media types (and ranges) a FHIR JSON answer satisfies; ``application/json+fhir`` is
#: the pre-R4 name some clients still send.
JSON_MEDIA = frozenset(
    {
        "*/*",
        "application/*",
        "application/json",
        "application/fhir+json",
        "application/json+fhir",
    }
)
#: ``_format`` values that ask for JSON (FHIR R4B 3.1.0.1.6: a short name or a MIME type).
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})


def accepts_json(accept: str | None) -> bool:
    """Does an ``Accept`` header admit FHIR JSON? No header accepts anything."""
    if accept is None or not accept.strip():
        return True
    for item in accept.split(","):
        media, *params = [part.strip() for part in item.split(";")]
        if media.lower() not in JSON_MEDIA:
            continue
        if all(_q(param) != 0.0 for param in params):
            return True
    return False


def _q(param: str) -> float | None:
    name, _, value = param.partition("=")
    if name.strip().lower() != "q":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def format_is_json(value: str) -> bool:
    """Does a ``_format`` value ask for JSON (parameters such as ``fhirVersion`` aside)?"""
    media = value.split(";")[0].strip().lower()
    return media in JSON_FORMATS
