from django.apps import AppConfig
from django.core.signals import request_started


class OAuthConfig(AppConfig):
    name = "oauth"
    verbose_name = "OAuth 2.0 token endpoint"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from apiclients.models import ApiClient, Membership
        from config.db import drop_dead_connections

        # Instead of CONN_HEALTH_CHECKS' round trip per request (config.db).
        request_started.connect(drop_dead_connections, dispatch_uid="drop_dead_connections")
        # Every change to a client reaches the memory of every worker before
        # it is confirmed (oauth.clientcache).
        post_save.connect(_client_saved, sender=ApiClient, dispatch_uid="client_cache_save")
        post_delete.connect(_client_saved, sender=ApiClient, dispatch_uid="client_cache_delete")
        # And every change to a user or a membership, for the users API's pages.
        for model in (get_user_model(), Membership):
            post_save.connect(
                _users_saved, sender=model, dispatch_uid=f"users_{model.__name__}_save"
            )
            post_delete.connect(
                _users_saved, sender=model, dispatch_uid=f"users_{model.__name__}_delete"
            )


def _client_saved(sender, instance, created=False, **kwargs):
    from oauth.clientcache import client_changed

    if created:
        return  # nobody can have it in memory yet
    client_changed(instance.client_id)


def _users_saved(sender, instance, **kwargs):
    from apiclients.models import Membership
    from oauth.clientcache import enabled, users_changed

    if not enabled():
        return  # no pages are kept: spare a sign-in the membership query
    if isinstance(instance, Membership):
        tenants = [instance.tenant_id]
    else:
        tenants = list(
            Membership.objects.filter(user_id=instance.pk).values_list("tenant_id", flat=True)
        )
    for tenant_id in tenants:
        users_changed(tenant_id)
