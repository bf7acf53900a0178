"""The FHIR R4B facade for hospital clients under ``/fhir/``: the CapabilityStatement,
consent-gated searchset Bundles, Consent resources, and OperationOutcome for every error."""
