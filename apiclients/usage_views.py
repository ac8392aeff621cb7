"""A client's usage log: who called the token endpoints with it, from
where, with what result; filterable, exportable as CSV. Admins and auditors
read it; nobody changes it."""

import csv
import re
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods

from apiclients import usagelog
from apiclients.auditlog import csv_safe
from apiclients.models import ApiClient
from apiclients.roles import console_reader

PAGE_SIZE = 50
RESULTS_ID = "usage-results"
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")
PERIODS = [("1", "Last 24 hours"), ("7", "Last 7 days"), ("30", "Last 30 days"), ("", "All kept")]
CSV_HEADER = [
    "minute",
    "last_at",
    "source_ip",
    "user_agent",
    "endpoint",
    "outcome",
    "outcome_label",
    "scopes",
    "requests",
]


class UsageFilterForm(forms.Form):
    outcome = forms.ChoiceField(required=False)
    address = forms.GenericIPAddressField(required=False, unpack_ipv4=True)
    days = forms.ChoiceField(required=False, choices=PERIODS)

    def __init__(self, *args, outcomes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "All outcomes"), (usagelog.OK, "Success"), ("failed", "Any failure")]
        choices += [(o, usagelog.OUTCOME_LABELS.get(o, o)) for o in outcomes if o != usagelog.OK]
        self.fields["outcome"].choices = choices


def _client(request: HttpRequest, client_id: str) -> ApiClient:
    if not _CLIENT_ID_RE.fullmatch(client_id):
        raise Http404("No such API client")
    # Another tenant's client is a 404, never a 403.
    return get_object_or_404(ApiClient.objects.for_tenant(request.tenant), client_id=client_id)


def _rows(client: ApiClient, form: UsageFilterForm):
    if not form.is_valid():
        return usagelog.entries(client)
    days = form.cleaned_data["days"]
    return usagelog.entries(
        client,
        outcome=form.cleaned_data["outcome"],
        address=form.cleaned_data["address"] or "",
        since=timezone.now() - timedelta(days=int(days)) if days else None,
    )


class _Echo:
    def write(self, value):
        return value


def _csv_lines(rows):
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for row in rows:
        cells = (
            row.minute.isoformat(),
            row.last_at.isoformat(),
            row.source_ip,
            row.user_agent,
            row.endpoint,
            row.outcome,
            usagelog.OUTCOME_LABELS.get(row.outcome, row.outcome),
            row.scopes,
            row.count,
        )
        # A user agent is whatever the caller sent: no spreadsheet formulas.
        yield writer.writerow([csv_safe(cell) for cell in cells])


@console_reader
@require_http_methods(["GET"])
def usage_log(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client(request, client_id)
    # What this process has counted but not written yet is written first,
    # so the page and the export show every request.
    usagelog.flush()
    form = UsageFilterForm(request.GET, outcomes=usagelog.outcomes(client))
    rows = _rows(client, form)
    filters = {k: v for k, v in request.GET.items() if k in form.fields and v}
    base = reverse("apiclients:usage_log", args=[client.client_id])

    def url(path=base, **extra):
        params = {**filters, **extra}
        return f"{path}?{urlencode(params)}" if params else path

    if request.GET.get("format") == "csv":
        return _csv(client, rows)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "client": client,
        "form": form,
        "page": page,
        "rows": page.object_list,
        "filtered": bool(filters),
        "clear_url": base,
        "export_url": url(reverse("apiclients:usage_log_export", args=[client.client_id])),
        "previous_url": url(page=page.previous_page_number()) if page.has_previous() else None,
        "next_url": url(page=page.next_page_number()) if page.has_next() else None,
        "results_id": RESULTS_ID,
        "detail_url": reverse("apiclients:detail", args=[client.client_id]),
    }
    if request.htmx and request.htmx.target == RESULTS_ID:
        return render(request, "usage/_results.html", context)
    return render(request, "usage/page.html", context)


def _csv(client: ApiClient, rows) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    name = slugify(client.name)[:50] or "client"
    response = StreamingHttpResponse(
        _csv_lines(rows.iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="usage-{name}-{stamp}.csv"'
    add_never_cache_headers(response)
    return response


@console_reader
@require_http_methods(["GET"])
def usage_log_export(request: HttpRequest, client_id: str) -> StreamingHttpResponse:
    client = _client(request, client_id)
    usagelog.flush()
    form = UsageFilterForm(request.GET, outcomes=usagelog.outcomes(client))
    return _csv(client, _rows(client, form))
