from django.urls import path

from oauth import api, views

app_name = "oauth"

urlpatterns = [
    # The token endpoint under both of Code42's paths (Incydr, CrashPlan).
    path("v1/oauth", views.token, name="token"),
    path("api/v3/oauth/token", views.token, name="token-v3"),
    path("v1/oauth/introspect", views.introspect, name="introspect"),
    path("v1/oauth/revoke", views.revoke, name="revoke"),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path(".well-known/oauth-authorization-server", views.metadata, name="metadata"),
    path("v1/users", api.users, name="users"),
    path("api/v3/users", api.users, name="users-v3"),
    path("v1/audit-log", api.audit_log, name="audit-log"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
]
