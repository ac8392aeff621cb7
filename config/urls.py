from django.urls import include, path

from apiclients.api.graphql_api import graphql_view
from apiclients.api.rest import management_urls

urlpatterns = [
    path("", include("oauth.urls")),
    # The management API, its OpenAPI document and Swagger UI.
    path("v1/", management_urls()),
    # The Taegis GraphQL operations on API clients.
    path("graphql", graphql_view, name="graphql"),
    path("", include("apiclients.urls")),
    path("accounts/", include("apiclients.auth_urls")),
]

handler400 = "config.views.bad_request"
handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
