from django.apps import AppConfig
from django.core.signals import request_started


class OAuthConfig(AppConfig):
    name = "oauth"
    verbose_name = "OAuth 2.0 token endpoint"

    def ready(self):
        from config.db import drop_dead_connections

        # Instead of CONN_HEALTH_CHECKS' round trip per request (config.db).
        request_started.connect(drop_dead_connections, dispatch_uid="drop_dead_connections")
