from django.urls import include, path

urlpatterns = [
    path("", include("oauth.urls")),
    path("", include("apiclients.urls")),
    path("accounts/", include("apiclients.auth_urls")),
]

handler400 = "config.views.bad_request"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
