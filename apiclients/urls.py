from django.urls import path

from apiclients import alert_views, policy_views, token_views, usage_views, views

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

# Who used a client, from where (apiclients.usagelog).
urlpatterns += [
    path(f"{CLIENTS}<str:client_id>/usage/", usage_views.usage_log, name="usage_log"),
    path(
        f"{CLIENTS}<str:client_id>/usage/export.csv",
        usage_views.usage_log_export,
        name="usage_log_export",
    ),
]

# Administration > Alerts (apiclients.alerts).
urlpatterns += [
    path("administration/alerts/", alert_views.alerts_page, name="alerts"),
    path("administration/alerts/add/", alert_views.destination_add, name="alert_add"),
    path(
        "administration/alerts/<int:pk>/delete/",
        alert_views.destination_delete,
        name="alert_delete",
    ),
    path("administration/alerts/<int:pk>/test/", alert_views.destination_test, name="alert_test"),
]

# Administration > Policies (apiclients.policies).
urlpatterns += [
    path("administration/policies/", policy_views.policies_page, name="policies"),
]
