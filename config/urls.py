from django.urls import include, path

urlpatterns = [
    path("", include("oauth.urls")),
    path("", include("apiclients.urls")),
]
