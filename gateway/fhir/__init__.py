"""The FHIR R4B facade for hospital clients under ``/fhir/``: the CapabilityStatement,
consent-gated searches (GET and POST ``_search``) and reads, Consent resources and their
search, and OperationOutcome for every error."""
