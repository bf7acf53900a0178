"""SMART Backend Services authentication for hospital systems (pure checks, no I/O).

A registered client proves itself with a JWT client assertion signed by one of its keys
(``client_credentials`` grant, RFC 7523 section 2.2); the hub answers with a short-lived access
token carrying SMART v2 system scopes. See hl7.org/fhir/smart-app-launch/backend-services.html.
"""
