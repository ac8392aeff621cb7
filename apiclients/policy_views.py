"""Administration > Policies: the tenant's rules for its API clients, and
the clients that break them now. Admins change them; auditors read."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apiclients import policies, services
from apiclients.roles import console_reader, source_ip

_DAYS = {"min_value": 1, "max_value": 3650}


class PolicyForm(forms.Form):
    max_secret_age_days = forms.IntegerField(required=False, **_DAYS)
    secret_age_grace_days = forms.IntegerField(required=False, min_value=0, max_value=3650)
    require_expiry_days = forms.IntegerField(required=False, **_DAYS)
    require_ip_restriction = forms.BooleanField(required=False)
    max_token_lifetime = forms.IntegerField(required=False, min_value=60, max_value=86400)

    def clean(self):
        data = super().clean()
        if (
            data.get("secret_age_grace_days") is not None
            and data.get("max_secret_age_days") is None
        ):
            self.add_error(
                "secret_age_grace_days", "A grace period needs a maximum secret age to follow"
            )
        return data


@console_reader
@require_http_methods(["GET", "POST"])
def policies_page(request: HttpRequest) -> HttpResponse:
    policy = policies.policy_of(request.tenant)
    if request.method == "POST":
        if not request.can_manage:
            return render(request, "403.html", {"needs_admin": True}, status=403)
        form = PolicyForm(request.POST)
        if form.is_valid():
            services.policy_update(
                tenant=request.tenant,
                actor=request.user,
                source_ip=source_ip(request),
                **form.cleaned_data,
            )
            messages.success(request, "Policies saved. Clients that break them are listed below.")
            return redirect("apiclients:policies")
    else:
        form = PolicyForm(
            initial={field: getattr(policy, field) for field in PolicyForm.base_fields}
        )
    return render(
        request,
        "policies/page.html",
        {"form": form, "policy": policy, "violations": policies.violations(request.tenant)},
    )
