"""``GET /fhir/metadata``: the CapabilityStatement (FHIR R4B 4.0: what this server does),
including how to authenticate (SMART Backend Services: the ``oauth-uris`` extension, which
is where clients such as fhirclient look for the token endpoint) and how to state the
purpose of use."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from fhir.resources.R4B.capabilitystatement import (
    CapabilityStatement,
    CapabilityStatementImplementation,
    CapabilityStatementRest,
    CapabilityStatementRestResource,
    CapabilityStatementRestResourceInteraction,
    CapabilityStatementRestResourceOperation,
    CapabilityStatementRestResourceSearchParam,
    CapabilityStatementRestSecurity,
    CapabilityStatementSoftware,
)
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.extension import Extension

from ..access.purpose import HEADER
from ..smart.assertion import TOKEN_PATH
from ..smart.bearer import issuer
from .outcome import FHIR_JSON
from .results import DEFAULT_COUNT, MAX_COUNT
from .search import SEARCHABLE

routes = web.RouteTableDef()

#: SMART App Launch 2.0, "FHIR Authorization Endpoint and Capabilities Discovery": the
#: extension on ``rest.security`` naming the OAuth endpoints.
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
PURPOSE_DOC = (
    "Every data request states its purpose of use: one HL7 v3 PurposeOfUse code "
    "(http://terminology.hl7.org/CodeSystem/v3-ActReason), e.g. TREAT, PUBHLTH, HRESCH, "
    f"in the {HEADER} header, or bound into the access token by the client assertion's "
    "HL7 UDAP B2B extension (extensions.hl7-b2b.purpose_of_use); the header may then pick "
    "one of the token's purposes, never another. ETREAT is break-glass, allowed only where "
    "the pilot says so and flagged in the audit. Every decision, allow or deny, is an "
    "access entry on the hub's log before any data leaves."
)
HANDLING_DOC = (
    "Searches follow Prefer: handling=lenient (the default: a parameter the hub does not "
    "support is ignored and named in an OperationOutcome entry, search.mode = outcome) or "
    "handling=strict (it is a 400). Answers are application/fhir+json only (else 406)."
)


def _param(name: str, kind: str, doc: str) -> CapabilityStatementRestResourceSearchParam:
    return CapabilityStatementRestResourceSearchParam(name=name, type=kind, documentation=doc)


def _result_params(sortable: bool) -> list[CapabilityStatementRestResourceSearchParam]:
    sort = [_param("_sort", "special", "date (oldest first) or -date")] if sortable else []
    return [
        _param(
            "_count",
            "number",
            f"page size, 0..{MAX_COUNT} (default {DEFAULT_COUNT}); 0: total only",
        ),
        _param("_offset", "number", "paging offset (from the Bundle's next link)"),
        *sort,
        _param("_summary", "special", "count (the total only) or false"),
        _param("_total", "special", "none, estimate or accurate (always exact)"),
        _param("_elements", "special", "top-level elements to keep (SUBSETTED)"),
    ]


def _search_params() -> list[CapabilityStatementRestResourceSearchParam]:
    return [
        _param("subject", "reference", "Patient/<pilot-scoped pseudonym>; required"),
        _param("patient", "reference", "same as subject"),
        _param("date", "date", "[eq|ge|gt|le|lt]date; repeatable, ANDed"),
        _param("code", "token", "LOINC codes, comma-separated"),
        _param("pilot", "token", "optional; must be the access token's pilot"),
        *_result_params(sortable=True),
    ]


def _consent_params() -> list[CapabilityStatementRestResourceSearchParam]:
    return [
        _param("patient", "reference", "Patient/<pilot-scoped pseudonym>; required"),
        _param("status", "token", "Consent statuses, comma-separated"),
        _param("pilot", "token", "optional; must be the access token's pilot"),
        *_result_params(sortable=False),
    ]


def _interactions(*codes: str) -> list[CapabilityStatementRestResourceInteraction]:
    return [CapabilityStatementRestResourceInteraction(code=code) for code in codes]


def _oauth_uris(base: str) -> Extension:
    # Backend services only: a token endpoint and no authorize endpoint (no user launches).
    return Extension(url=OAUTH_URIS, extension=[Extension(url="token", valueUri=base + TOKEN_PATH)])


def capability_statement(base: str) -> CapabilityStatement:
    resources = [
        CapabilityStatementRestResource(
            type=resource,
            interaction=_interactions("read", "search-type"),
            searchParam=_search_params(),
            documentation=f"Read and search (GET, or POST /fhir/{resource}/_search with the "
            "parameters form-encoded), consent-gated. " + PURPOSE_DOC,
        )
        for resource in SEARCHABLE
    ]
    resources.append(
        CapabilityStatementRestResource(
            type="Consent",
            interaction=_interactions("create", "read", "update", "search-type"),
            searchParam=_consent_params(),
            operation=[
                CapabilityStatementRestResourceOperation(
                    name="withdraw",
                    definition=f"{base}/fhir/OperationDefinition/Consent-withdraw",
                    documentation="POST /fhir/Consent/{id}/$withdraw[?erase=true]: status "
                    "inactive from the next request; with erase, the bodies of the records it "
                    "covered are deleted (erasure entries on the log).",
                )
            ],
            documentation="By the pilot's consent administrators; each change is a consent "
            "entry on the log.",
        )
    )
    return CapabilityStatement(
        status="active",
        date=datetime.now(UTC).replace(microsecond=0),
        kind="instance",
        fhirVersion="4.3.0",
        format=["json"],
        software=CapabilityStatementSoftware(name="Swiftchain ledger hub", version="1"),
        implementation=CapabilityStatementImplementation(
            description="Swiftchain consent-gated FHIR facade", url=f"{base}/fhir"
        ),
        rest=[
            CapabilityStatementRest(
                mode="server",
                documentation=PURPOSE_DOC + " " + HANDLING_DOC,
                security=CapabilityStatementRestSecurity(
                    extension=[_oauth_uris(base)],
                    service=[
                        CodeableConcept(
                            coding=[
                                Coding(
                                    system="http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    code="SMART-on-FHIR",
                                )
                            ]
                        )
                    ],
                    description="SMART Backend Services: client_credentials with a "
                    f"private_key_jwt assertion (ES384 or EdDSA) at {base}/oauth/token; "
                    f"discovery at {base}/.well-known/smart-configuration. " + PURPOSE_DOC,
                ),
                resource=resources,
            )
        ],
    )


@routes.get("/fhir/metadata")
async def metadata(request: web.Request) -> web.Response:
    body = capability_statement(issuer(request)).model_dump_json()
    return web.Response(text=body, content_type=FHIR_JSON)
