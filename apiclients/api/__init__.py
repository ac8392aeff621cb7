"""The management API: API clients as a REST API under /v1/api-clients
(django-ninja, OpenAPI 3.1 at /v1/openapi.json, Swagger UI at /v1/docs) and
the Taegis GraphQL operations at /graphql. Both call the console's services,
so every change is audited with its actor, and validate with the console's
forms, so both give the console's error messages."""
