"""Administration > Alerts: where a tenant's alerts go (email addresses and
webhooks), and every delivery with its status. Admins add, remove and test
destinations; auditors read."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from apiclients import alerts, tasks
from apiclients.models import AlertDestination, AlertEvent
from apiclients.roles import console_admin, console_reader

CHOOSABLE = [(e.value, e.label) for e in AlertEvent if e != AlertEvent.TEST]


class DestinationForm(forms.Form):
    kind = forms.ChoiceField(
        choices=AlertDestination.Kind.choices, initial=AlertDestination.Kind.EMAIL
    )
    target = forms.CharField(
        label="Email address or webhook URL",
        max_length=500,
        error_messages={"required": "Enter an email address or a webhook URL"},
    )
    events = forms.MultipleChoiceField(
        choices=CHOOSABLE,
        widget=forms.CheckboxSelectMultiple,
        initial=[value for value, _ in CHOOSABLE],
        error_messages={"required": "Choose at least one event"},
    )

    def clean(self):
        data = super().clean()
        kind, target = data.get("kind"), (data.get("target") or "").strip()
        if not kind or not target:
            return data
        try:
            if kind == AlertDestination.Kind.EMAIL:
                forms.EmailField().clean(target)
            else:
                forms.URLField(assume_scheme="https").clean(target)
                if not target.lower().startswith(("https://", "http://")):
                    raise forms.ValidationError("")
        except forms.ValidationError:
            self.add_error(
                "target",
                "Enter a valid email address"
                if kind == AlertDestination.Kind.EMAIL
                else "Enter a valid http:// or https:// URL",
            )
        data["target"] = target
        return data


def _context(request: HttpRequest, form: DestinationForm, **extra) -> dict:
    deliveries = Paginator(alerts.deliveries_for(request.tenant), 25).get_page(
        request.GET.get("page")
    )
    return {
        "form": form,
        "destinations": alerts.destinations_for(request.tenant),
        "deliveries": deliveries,
        "labels": dict(AlertEvent.choices),
        **extra,
    }


@console_reader
@require_http_methods(["GET"])
def alerts_page(request: HttpRequest) -> HttpResponse:
    return render(request, "alerts/page.html", _context(request, DestinationForm()))


@console_admin
@require_http_methods(["POST"])
def destination_add(request: HttpRequest) -> HttpResponse:
    form = DestinationForm(request.POST)
    if not form.is_valid():
        return render(request, "alerts/page.html", _context(request, form), status=200)
    try:
        destination, secret = alerts.destination_create(
            tenant=request.tenant,
            kind=form.cleaned_data["kind"],
            target=form.cleaned_data["target"],
            events=form.cleaned_data["events"],
            actor=request.user,
        )
    except IntegrityError:
        form.add_error("target", "This destination is already listed")
        return render(request, "alerts/page.html", _context(request, form), status=200)
    if secret is None:
        messages.success(request, f"Alerts will be emailed to {destination.target}.")
        return redirect("apiclients:alerts")
    # The signing secret, once: never shown again.
    response = render(
        request,
        "alerts/page.html",
        _context(request, DestinationForm(), revealed=destination, secret=secret),
    )
    add_never_cache_headers(response)
    return response


@console_admin
@require_http_methods(["POST"])
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(AlertDestination, pk=pk, tenant=request.tenant)
    alerts.destination_delete(destination=destination)
    messages.success(request, f"{destination.target} no longer receives alerts.")
    return redirect("apiclients:alerts")


@console_admin
@require_http_methods(["POST"])
def destination_test(request: HttpRequest, pk: int) -> HttpResponse:
    destination = get_object_or_404(AlertDestination, pk=pk, tenant=request.tenant)
    delivery = alerts.test_event(destination=destination, actor=request.user)
    tasks.queue_on_commit([delivery.pk])
    messages.success(
        request,
        f"A test event is on its way to {destination.target}; its delivery is listed below.",
    )
    return redirect("apiclients:alerts")
