"""``GET /fhir/metadata``: the CapabilityStatement (FHIR R4B 4.0: what this server does),
including how to authenticate (SMART Backend Services) and the purpose-of-use header."""

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

from ..access.purpose import HEADER
from ..smart.bearer import issuer
from .outcome import FHIR_JSON
from .search import SEARCHABLE

routes = web.RouteTableDef()

PURPOSE_DOC = (
    f"Every data request carries the {HEADER} header: one HL7 v3 PurposeOfUse code "
    "(http://terminology.hl7.org/CodeSystem/v3-ActReason), e.g. TREAT, PUBHLTH, HRESCH; "
    "ETREAT is break-glass, allowed only where the pilot says so and flagged in the audit. "
    "Every decision, allow or deny, is an access entry on the hub's log before any data "
    "leaves."
)


def _param(name: str, kind: str, doc: str) -> CapabilityStatementRestResourceSearchParam:
    return CapabilityStatementRestResourceSearchParam(name=name, type=kind, documentation=doc)


def _search_params() -> list[CapabilityStatementRestResourceSearchParam]:
    return [
        _param("subject", "reference", "Patient/<pilot-scoped pseudonym>; required"),
        _param("patient", "reference", "same as subject"),
        _param("date", "date", "[eq|ge|gt|le|lt]date; repeatable, ANDed"),
        _param("code", "token", "LOINC codes, comma-separated"),
        _param("_count", "number", "page size, 1..100 (default 20)"),
        _param("_offset", "number", "paging offset (from the Bundle's next link)"),
        _param("pilot", "token", "optional; must be the access token's pilot"),
    ]


def capability_statement(base: str) -> CapabilityStatement:
    resources = [
        CapabilityStatementRestResource(
            type=resource,
            interaction=[CapabilityStatementRestResourceInteraction(code="search-type")],
            searchParam=_search_params(),
            documentation=PURPOSE_DOC,
        )
        for resource in SEARCHABLE
    ]
    resources.append(
        CapabilityStatementRestResource(
            type="Consent",
            interaction=[
                CapabilityStatementRestResourceInteraction(code=code)
                for code in ("create", "read", "update")
            ],
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
                documentation=PURPOSE_DOC,
                security=CapabilityStatementRestSecurity(
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
