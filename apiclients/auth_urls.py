"""Sign in and out. Not namespaced: settings.LOGIN_URL and
LOGOUT_REDIRECT_URL name them "login" and "logout"."""

from django.contrib.auth import views as auth_views
from django.urls import path

from apiclients.signin import SignInView

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    # POST only (Django's LogoutView): a link or an <img> cannot sign anyone out.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
