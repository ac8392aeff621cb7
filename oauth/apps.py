from django.apps import AppConfig


class OAuthConfig(AppConfig):
    name = "oauth"
    verbose_name = "OAuth 2.0 token endpoint"

    def ready(self):
        # The caches register their topics with oauth.coherence on import.
        from oauth import clientcache  # noqa: F401
