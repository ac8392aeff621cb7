"""Personal access tokens in the console, under the user's menu: list,
create (shown once), revoke. Admins only: a token acts as its owner on the
management API, which only admins may use."""

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apiclients.access_tokens import (
    LIFETIME_CHOICES,
    LIFETIMES,
    access_token_create,
    access_token_revoke,
)
from apiclients.models import PersonalAccessToken
from apiclients.roles import console_admin, source_ip


class AccessTokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="What will use it, e.g. “Terraform” or “nightly rotation script”.",
        widget=forms.TextInput(attrs={"class": "input", "autocomplete": "off"}),
        error_messages={"required": "Enter a name for the token."},
    )
    lifetime = forms.ChoiceField(
        label="Expires after",
        choices=LIFETIME_CHOICES,
        initial="30d",
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose when the token expires."},
    )


@never_cache
@console_admin
@require_http_methods(["GET", "POST"])
def access_tokens(request: HttpRequest) -> HttpResponse:
    form = AccessTokenForm(request.POST or None)
    revealed = None
    if request.method == "POST" and form.is_valid():
        token, raw = access_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            days=LIFETIMES[form.cleaned_data["lifetime"]],
            source_ip=source_ip(request),
        )
        # Shown in this answer only (never_cache: not kept by any cache).
        revealed = {"token": token, "value": raw}
        form = AccessTokenForm()
    tokens = PersonalAccessToken.objects.for_user(request.user)
    return render(
        request,
        "tokens/page.html",
        {
            "form": form,
            "tokens": tokens,
            "revealed": revealed,
            "now": timezone.now(),
            "base_url": settings.BASE_URL,
        },
    )


@console_admin
@require_http_methods(["POST"])
def access_token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    # Only one's own tokens: anyone else's is a 404.
    token = get_object_or_404(PersonalAccessToken.objects.for_user(request.user), pk=pk)
    access_token_revoke(token=token, actor=request.user, source_ip=source_ip(request))
    return redirect("apiclients:access_tokens")
