from django.urls import path

from apiclients import token_views, views

app_name = "apiclients"

CLIENTS = "administration/integrations/api-clients/"

urlpatterns = [
    path("", views.home, name="home"),
    path(CLIENTS, views.client_list, name="list"),
    path(f"{CLIENTS}new/", views.client_create, name="create"),
    path(f"{CLIENTS}<str:client_id>/", views.client_detail, name="detail"),
    path(f"{CLIENTS}<str:client_id>/edit/", views.client_edit, name="edit"),
    path(f"{CLIENTS}<str:client_id>/reset-secret/", views.client_reset_secret, name="reset_secret"),
    path(
        f"{CLIENTS}<str:client_id>/rotate-secret/",
        views.client_rotate_secret,
        name="rotate_secret",
    ),
    path(
        f"{CLIENTS}<str:client_id>/revoke-old-secret/",
        views.client_revoke_old_secret,
        name="revoke_old_secret",
    ),
    path(f"{CLIENTS}<str:client_id>/delete/", views.client_delete, name="delete"),
    path(
        f"{CLIENTS}<str:client_id>/lift-lockout/",
        views.client_lift_lockout,
        name="lift_lockout",
    ),
    path("administration/audit-log/", views.audit_log, name="audit_log"),
    path("administration/audit-log/export.csv", views.audit_log_export, name="audit_log_export"),
    path("account/tokens/", token_views.access_tokens, name="access_tokens"),
    path(
        "account/tokens/<int:pk>/revoke/",
        token_views.access_token_revoke_view,
        name="access_token_revoke",
    ),
]
