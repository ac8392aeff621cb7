"""The console. Views are thin: parse with a form, call one service, pick a
template.

htmx conventions (see STYLE.md): a GET with htmx appends a <dialog> to the
body; its form posts back to the same URL and gets the dialog's panel back
(errors at 200, or the one-time reveal); a finished edit or delete answers
204 with HX-Trigger events that close the dialog and refresh the list. Never a
redirect to an htmx POST: the browser would follow it and drop HX-Trigger.
Without htmx every URL is an ordinary page and every form an ordinary POST.
"""

import re
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Q, Window
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_htmx.http import trigger_client_event

from apiclients import auditlog, charts, hygiene, services, sudo, usage
from apiclients.catalog import permission_rows
from apiclients.forms import (
    RECENT_USE,
    ApiClientForm,
    AuditLogFilterForm,
    DeleteForm,
    EditApiClientForm,
    LiftLockoutForm,
    ResetSecretForm,
    RotateSecretForm,
)
from apiclients.lockouts import active_lockouts
from apiclients.models import ApiClient, AuditEvent
from apiclients.policies import PolicyViolation
from apiclients.roles import console_admin, console_reader, source_ip
from config import redis

PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
RESULTS_ID = "api-client-results"
AUDIT_RESULTS_ID = "audit-results"

# Sort keys in the query string -> ORDER BY. The trailing pk keeps pages
# stable when many rows share a value. "Never redeemed" sorts as the oldest.
SORTS = {
    "name": (Lower("name").asc(), "pk"),
    "-name": (Lower("name").desc(), "-pk"),
    "created": ("created_at", "pk"),
    "-created": ("-created_at", "-pk"),
    "last_redeemed": (F("last_redeemed_at").asc(nulls_first=True), "pk"),
    "-last_redeemed": (F("last_redeemed_at").desc(nulls_last=True), "-pk"),
}
DEFAULT_SORT = "-created"
# The sort menu of a phone, whose list hides the date columns.
SORT_CHOICES = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("-last_redeemed", "Last redeemed, latest first"),
    ("last_redeemed", "Last redeemed, never first"),
]
SORT_LABELS = {"name": "name", "created": "date created", "last_redeemed": "last redeemed"}
# Only what a row shows: touching any other field would cost a query per row.
LIST_FIELDS = (
    "name",
    "is_active",
    "created_at",
    "updated_at",
    "last_redeemed_at",
    "client_id",
    # for the hygiene badges
    "expires_at",
    "secret_reset_at",
    "previous_secret_digest",
    "previous_secret_expires_at",
    # roles, shown beside the name
    "role_assignments",
)


# A tenant policy's refusal, shown at the form field it is about.
_POLICY_FIELDS = {"ip_allowlist": "ip_mode", "expires_at": "expires_on"}


def _htmx(request: HttpRequest) -> bool:
    # A history restore (Back after hx-push-url, with no cached snapshot)
    # needs the whole page, even though htmx sends it.
    return bool(request.htmx) and not request.htmx.history_restore_request


# Printable ASCII, as long as the column: anything else (a NUL byte, which
# PostgreSQL refuses in a query outright) cannot be a client ID.
_CLIENT_ID_RE = re.compile(r"[\x21-\x7e]{1,64}")


def _client_or_404(request: HttpRequest, client_id: str, *related: str) -> ApiClient:
    if not _CLIENT_ID_RE.fullmatch(client_id):
        raise Http404("No such API client")
    # Scoped to the tenant: another tenant's client is a 404, never a 403.
    qs = ApiClient.objects.for_tenant(request.tenant)
    if related:
        qs = qs.select_related(*related)
    return get_object_or_404(qs, client_id=client_id)


# -- list -------------------------------------------------------------------


def _list_url(
    *, q: str = "", show: str = "", sort: str = DEFAULT_SORT, page: int | None = None
) -> str:
    params = {}
    if q:
        params["q"] = q
    if show:
        params["show"] = show
    if sort != DEFAULT_SORT:
        params["sort"] = sort
    if page and page > 1:
        params["page"] = page
    url = reverse("apiclients:list")
    return f"{url}?{urlencode(params)}" if params else url


_MAX_OFFSET = 2**31


def _page_with_total(queryset, per_page: int, number) -> Page:
    """Paginator(...).get_page(number), in one query instead of two: the rows
    carry the total (COUNT(*) OVER ()). A search scans every client of the
    tenant; with a separate count it would scan them twice (once for the
    count, once for the page), with the total alongside once. A page past the end
    (or not a number) is the last (or first) page, as get_page() does, at
    the cost of the count after all."""
    try:
        wanted = max(1, int(number))
    except (TypeError, ValueError):
        wanted = 1
    paginator = Paginator(queryset, per_page)
    start = (wanted - 1) * per_page
    if start > _MAX_OFFSET:
        # Past any real list, and past what the database takes as an OFFSET.
        return paginator.get_page(wanted)
    rows = list(queryset.annotate(_total=Window(Count("*")))[start : start + per_page])
    if rows or wanted == 1:
        paginator.__dict__["count"] = rows[0]._total if rows else 0
        return Page(rows, wanted, paginator)
    return paginator.get_page(wanted)


def _listing(request: HttpRequest, params=None) -> dict:
    params = request.GET if params is None else params
    # NUL bytes cannot be searched for (PostgreSQL refuses them in a query).
    q = params.get("q", "").replace("\x00", "").strip()[:100]
    sort = params.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    show = params.get("show", "")
    if show not in hygiene.FILTERS:
        show = ""
    now = timezone.now()

    clients = ApiClient.objects.for_tenant(request.tenant).only(*LIST_FIELDS)
    if q:
        clients = clients.filter(Q(name__icontains=q) | Q(client_id__icontains=q))
    clients = hygiene.apply_filter(clients, show, now)
    clients = clients.order_by(*SORTS[sort])
    if q or show:
        page = _page_with_total(clients, PAGE_SIZE, params.get("page"))
    else:
        # Unfiltered, the count and the page each read an index; a window
        # count would read every row of the tenant.
        page = Paginator(clients, PAGE_SIZE).get_page(params.get("page"))

    current_key, descending = sort.lstrip("-"), sort.startswith("-")
    columns = []
    for key, label in (
        ("name", "Client name"),
        ("status", "Status"),
        ("created", "Date created"),
        ("modified", "Last modified"),
        ("last_redeemed", "Last redeemed"),
        ("client_id", "Client ID"),
    ):
        column = {
            "label": label,
            "url": None,
            "aria_sort": None,
            # Hidden beside an open drawer, which shows them.
            "secondary": key in ("modified", "client_id"),
            # Hidden on a phone: the name cell shows status and client ID.
            "wide": key in ("status", "created", "modified", "client_id"),
        }
        if key in SORT_LABELS:
            active = key == current_key
            # Names read A-Z first; dates newest first.
            first = key if key == "name" else f"-{key}"
            if active:
                next_sort = key if descending else f"-{key}"
            else:
                next_sort = first
            column.update(
                url=_list_url(q=q, show=show, sort=next_sort),
                active=active,
                descending=descending,
                aria_sort=("descending" if descending else "ascending") if active else "none",
            )
        columns.append(column)

    def page_url(number):
        return _list_url(q=q, show=show, sort=sort, page=number)

    return {
        "page": page,
        "clients": page.object_list,
        "now": now,
        "q": q,
        "show": show,
        "show_label": hygiene.FILTERS[show],
        "filters": hygiene.FILTERS,
        "sort": sort,
        "sort_choices": SORT_CHOICES,
        "sort_label": SORT_LABELS[current_key],
        "sort_descending": descending,
        "columns": columns,
        "refresh_url": page_url(page.number),
        "previous_url": page_url(page.previous_page_number()) if page.has_previous() else None,
        "next_url": page_url(page.next_page_number()) if page.has_next() else None,
        "clear_search_url": _list_url(sort=sort),
        "filtered": bool(q or show),
        "results_id": RESULTS_ID,
    }


@console_reader
@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    return redirect("apiclients:list")


@console_reader
@require_http_methods(["GET"])
def client_list(request: HttpRequest) -> HttpResponse:
    listing = _listing(request)
    if _htmx(request) and request.htmx.target == RESULTS_ID:
        return render(request, "apiclients/_list_results.html", listing)
    return render(request, "apiclients/list.html", listing)


# -- details drawer ---------------------------------------------------------


def _back_to_list_url(request: HttpRequest) -> str:
    """The list as the user last saw it (search, sort, page), to close the
    drawer onto."""
    list_path = reverse("apiclients:list")
    for candidate in (_back_param, _htmx_current_url):
        try:
            url = candidate(request)
            parts = urlsplit(url) if url else None
        except ValueError:  # not a URL at all ("http://[" raises)
            continue
        # Only ever a link back to the list on this site: no scheme either,
        # since browsers read "http:/x" under https as the host "x".
        if parts and not parts.scheme and not parts.netloc and parts.path == list_path:
            return url
    return list_path


def _back_param(request: HttpRequest) -> str | None:
    return request.GET.get("back")  # a drawer reloading itself passes its own


def _htmx_current_url(request: HttpRequest) -> str | None:
    # django-htmx parses the header itself, and raises on a malformed URL.
    return request.htmx.current_url_abs_path if request.htmx else None


@console_reader
@require_http_methods(["GET"])
def client_detail(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client_or_404(request, client_id, "created_by", "updated_by")
    now = timezone.now()
    drawer = {
        "client": client,
        "now": now,
        "badges": hygiene.badges(client, now, overlap=False),
        "secret_age_days": hygiene.secret_age_days(client, now),
        "secret_is_old": hygiene.secret_is_old(client, now),
        "old_secret_live": client.previous_secret_live(now),
        "chart": charts.token_chart(usage.daily_counts(client, now.date())),
        "drawer_title": client.name,
        "body_template": "apiclients/_detail.html",
        "close_url": _back_to_list_url(request),
        "drawer_refresh_url": reverse("apiclients:detail", args=[client.client_id]),
        "permissions": [
            row for row in permission_rows(client.grants) if row["read"] or row["write"]
        ],
        "lockouts": active_lockouts(client, now),
    }
    if _htmx(request):
        return render(request, "components/drawer.html", drawer)
    # Opened directly: the list, with the drawer open beside it.
    context = {**_listing(request, {}), **drawer, "drawer": True}
    return render(request, "apiclients/list.html", context)


# -- dialogs ----------------------------------------------------------------


def _dialog(
    request: HttpRequest, *, dialog_id: str, title: str, body: str, context: dict
) -> HttpResponse:
    """Renders a dialog body three ways: the whole <dialog> for an htmx GET,
    just its panel for an htmx POST (swapped in place), a full page otherwise."""
    in_dialog = _htmx(request)
    context = {
        **context,
        "dialog_id": dialog_id,
        "title": title,
        "body_template": body,
        "in_dialog": in_dialog,
        "list_url": reverse("apiclients:list"),
    }
    if not in_dialog:
        template = "apiclients/dialog_page.html"
    elif request.method == "GET":
        template = "components/dialog.html"
    else:
        template = "components/_dialog_panel.html"
    return render(request, template, context)


def _dialog_done(request: HttpRequest, *, toast: str, **changed) -> HttpResponse:
    """A finished edit or delete in a dialog: no body, just events. The list
    refreshes before the dialog closes (the events fire on the form, which
    must still be in the document for them to bubble to <body>)."""
    response = HttpResponse(status=204)
    trigger_client_event(response, "apiClientsChanged", changed)
    trigger_client_event(response, "closeDialog")
    trigger_client_event(response, "showToast", {"message": toast})
    return response


def _reveal(
    request: HttpRequest,
    client: ApiClient,
    secret: str,
    *,
    dialog_id: str,
    title: str,
    old_secret_until=None,
):
    """The one and only response that ever contains `secret`."""
    base_url = settings.BASE_URL
    token_url = f"{base_url}/v1/oauth"
    response = _dialog(
        request,
        dialog_id=dialog_id,
        title=title,
        body="apiclients/_reveal.html",
        context={
            "client": client,
            "secret": secret,
            "base_url": base_url,
            "curl": f"curl -X POST -u '{client.client_id}:{secret}' -d \"\" {token_url}",
            "token_minutes": max(1, settings.OAUTH["TOKEN_LIFETIME"] // 60),
            "old_secret_until": old_secret_until,
            "locked": True,
        },
    )
    add_never_cache_headers(response)
    trigger_client_event(response, "apiClientsChanged")
    return response


@never_cache
@console_admin
@require_http_methods(["GET", "POST"])
def client_create(request: HttpRequest) -> HttpResponse:
    form = ApiClientForm(request.POST if request.method == "POST" else None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            client, secret = services.api_client_create(
                tenant=request.tenant,
                actor=request.user,
                source_ip=source_ip(request),
                **form.service_arguments(),
            )
        except services.NameTaken:
            form.add_name_taken_error()
        except PolicyViolation as exc:
            form.add_error(_POLICY_FIELDS[exc.field], exc.message)
        else:
            return _reveal(
                request, client, secret, dialog_id="create-api-client", title="API client created"
            )
    return _dialog(
        request,
        dialog_id="create-api-client",
        title="Create new API client",
        body="apiclients/_form.html",
        context={"form": form, "action": reverse("apiclients:create"), "submit_label": "Save"},
    )


def _conflict_rows(form: EditApiClientForm, current: ApiClient) -> list[dict]:
    """Saved values beside what the user submitted, for the conflict notice."""
    mine = form.cleaned_data if form.is_valid() else {}
    rows = []
    for field, label, saved, yours in (
        ("name", "Name", current.name, mine.get("name")),
        ("description", "Description", current.description, mine.get("description")),
        (
            "grants",
            "API permissions",
            list(current.grants),
            mine.get("grants"),
        ),
        ("ip_allowlist", "IP restriction", list(current.ip_allowlist), mine.get("ip_list")),
        ("is_active", "Status", current.is_active, mine.get("status") == "active"),
    ):
        differs = yours is not None and (
            sorted(saved) != sorted(yours) if isinstance(saved, list) else saved != yours
        )
        rows.append(
            {"label": label, "saved": auditlog.value_text(field, saved) or "—", "differs": differs}
        )
    return rows


@console_admin
@require_http_methods(["GET", "POST"])
def client_edit(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client_or_404(request, client_id)
    conflict = None
    if request.method == "POST":
        form = EditApiClientForm(request.POST, tenant=request.tenant, instance=client)
        if form.is_valid():
            try:
                services.api_client_update(
                    client=client,
                    actor=request.user,
                    expected_version=form.cleaned_data["version"],
                    source_ip=source_ip(request),
                    **form.service_arguments(),
                )
            except services.EditConflict as exc:
                # Keep everything the user typed, show what is saved now, and
                # let a second Save (now against the new version) overwrite
                # knowingly.
                conflict = exc.current
                data = request.POST.copy()
                data["version"] = str(conflict.version)
                form = EditApiClientForm(data, tenant=request.tenant, instance=conflict)
            except services.NameTaken:
                form.add_name_taken_error()
            except PolicyViolation as exc:
                form.add_error(_POLICY_FIELDS[exc.field], exc.message)
            except ApiClient.DoesNotExist as exc:
                raise Http404("The API client was deleted") from exc
            else:
                name = form.cleaned_data["name"]
                if _htmx(request):
                    return _dialog_done(request, toast=f"Saved “{name}”.")
                messages.success(request, f"Saved “{name}”.")
                return redirect("apiclients:detail", client_id=client.client_id)
    else:
        form = EditApiClientForm(
            initial=EditApiClientForm.initial_for(client), tenant=request.tenant, instance=client
        )
    return _dialog(
        request,
        dialog_id="edit-api-client",
        title="Edit API client",
        body="apiclients/_form.html",
        context={
            "form": form,
            "client": client,
            "action": reverse("apiclients:edit", args=[client.client_id]),
            "submit_label": "Save",
            "conflict": conflict,
            "conflict_rows": _conflict_rows(form, conflict) if conflict else None,
            "conflict_by": _conflict_author(request, conflict) if conflict else None,
        },
    )


def _conflict_author(request: HttpRequest, current: ApiClient) -> str:
    if current.updated_by_id == request.user.pk:
        return "You (in another window)"
    return current.updated_by.get_username() if current.updated_by else "Someone else"


def _destructive(form, client: ApiClient) -> dict:
    """What every reset, rotation and delete dialog shows: the client's last
    use, and whether the password is asked (sudo mode)."""
    form.forget_confirmed_password()
    now = timezone.now()
    last = client.last_redeemed_at
    return {
        "client": client,
        "form": form,
        "now": now,
        "recently_used": last is not None and now - last < RECENT_USE,
        "sudo_minutes": max(1, sudo.window_seconds() // 60),
    }


def _throttled(request: HttpRequest, form, response: HttpResponse) -> HttpResponse:
    # Too many wrong passwords: a 429 for a page; an htmx form needs its 200
    # to be swapped in, with the error inline.
    if not _htmx(request) and form.has_error("password", "throttled"):
        response.status_code = 429
        response["Retry-After"] = str(settings.LOGIN_FAILURE_WINDOW)
    return response


@never_cache
@console_admin
@require_http_methods(["GET", "POST"])
def client_reset_secret(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client_or_404(request, client_id)
    form = ResetSecretForm(request.POST if request.method == "POST" else None, request=request)
    if request.method == "POST" and form.is_valid():
        client, secret = services.api_client_reset_secret(
            client=client, actor=request.user, source_ip=source_ip(request)
        )
        return _reveal(request, client, secret, dialog_id="reset-api-secret", title="New secret")
    response = _dialog(
        request,
        dialog_id="reset-api-secret",
        title="Reset API secret",
        body="apiclients/_reset_confirm.html",
        context={
            **_destructive(form, client),
            "action": reverse("apiclients:reset_secret", args=[client.client_id]),
        },
    )
    return _throttled(request, form, response)


@never_cache
@console_admin
@require_http_methods(["GET", "POST"])
def client_rotate_secret(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client_or_404(request, client_id)
    form = RotateSecretForm(request.POST if request.method == "POST" else None, request=request)
    if request.method == "POST" and form.is_valid():
        client, secret = services.api_client_rotate_secret(
            client=client, grace=form.grace, actor=request.user, source_ip=source_ip(request)
        )
        return _reveal(
            request,
            client,
            secret,
            dialog_id="rotate-api-secret",
            title="New secret",
            old_secret_until=client.previous_secret_expires_at,
        )
    response = _dialog(
        request,
        dialog_id="rotate-api-secret",
        title="Rotate API secret",
        body="apiclients/_rotate_confirm.html",
        context={
            **_destructive(form, client),
            "old_secret_live": client.previous_secret_live(timezone.now()),
            "action": reverse("apiclients:rotate_secret", args=[client.client_id]),
        },
    )
    return _throttled(request, form, response)


@console_admin
@require_http_methods(["GET", "POST"])
def client_revoke_old_secret(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client_or_404(request, client_id)
    if request.method == "POST":
        services.api_client_revoke_previous_secret(
            client=client, actor=request.user, source_ip=source_ip(request)
        )
        toast = f"The old secret of “{client.name}” no longer works."
        if _htmx(request):
            return _dialog_done(request, toast=toast)
        messages.success(request, toast)
        return redirect("apiclients:detail", client_id=client.client_id)
    return _dialog(
        request,
        dialog_id="revoke-old-secret",
        title="Revoke old secret now",
        body="apiclients/_revoke_old_confirm.html",
        context={
            "client": client,
            "old_secret_live": client.previous_secret_live(timezone.now()),
            "action": reverse("apiclients:revoke_old_secret", args=[client.client_id]),
        },
    )


@console_admin
@require_http_methods(["GET", "POST"])
def client_lift_lockout(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client_or_404(request, client_id)
    form = LiftLockoutForm(request.POST or request.GET or None)
    address = form.cleaned_data["address"] if form.is_valid() else None
    error = None
    if request.method == "POST" and form.is_valid():
        try:
            services.api_client_lockout_lift(
                client=client, address=address, actor=request.user, source_ip=source_ip(request)
            )
        except redis.ERRORS:
            error = (
                "The failure counters cannot be reached right now, so the lockout was not "
                "lifted. It ends by itself at the time shown; try again in a moment."
            )
        else:
            toast = f"Failures of “{client.name}” from {address or 'anywhere'} count afresh."
            if _htmx(request):
                return _dialog_done(request, toast=toast)
            messages.success(request, toast)
            return redirect("apiclients:detail", client_id=client.client_id)
    return _dialog(
        request,
        dialog_id="lift-lockout",
        title="Lift lockout",
        body="apiclients/_lift_lockout_confirm.html",
        context={
            "client": client,
            "form": form,
            "address": address,
            "error": error,
            "action": reverse("apiclients:lift_lockout", args=[client.client_id]),
        },
    )


@console_admin
@require_http_methods(["GET", "POST"])
def client_delete(request: HttpRequest, client_id: str) -> HttpResponse:
    client = _client_or_404(request, client_id)
    form = DeleteForm(
        request.POST if request.method == "POST" else None,
        request=request,
        client=client,
        now=timezone.now(),
    )
    if request.method == "POST" and form.is_valid():
        services.api_client_delete(client=client, actor=request.user, source_ip=source_ip(request))
        toast = f"Deleted “{client.name}”."
        if _htmx(request):
            return _dialog_done(request, toast=toast, deleted=client.client_id)
        messages.success(request, toast)
        return redirect("apiclients:list")
    response = _dialog(
        request,
        dialog_id="delete-api-client",
        title="Delete API client",
        body="apiclients/_delete_confirm.html",
        context={
            **_destructive(form, client),
            "action": reverse("apiclients:delete", args=[client.client_id]),
        },
    )
    return _throttled(request, form, response)


# -- audit log --------------------------------------------------------------


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        n, unit = seconds // 3600, "hour"
    elif seconds % 60 == 0 and seconds >= 60:
        n, unit = seconds // 60, "minute"
    else:
        n, unit = seconds, "second"
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _audit_events(request: HttpRequest, form: AuditLogFilterForm):
    events = AuditEvent.objects.for_tenant(request.tenant)
    if form.is_valid():
        client = form.cleaned_data["client"].strip()
        if client:
            events = events.filter(Q(client_id=client) | Q(client_name__icontains=client))
        if form.cleaned_data["action"]:
            events = events.filter(action=form.cleaned_data["action"])
    return events.order_by("-created_at", "-id")


def _audit_csv(request: HttpRequest, events) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    tenant = slugify(request.tenant.name)[:50] or "tenant"
    response = StreamingHttpResponse(
        auditlog.csv_lines(events.iterator(chunk_size=2000)),
        content_type="text/csv; charset=utf-8",
    )
    # slugify leaves only [a-z0-9_-], so the filename needs no quoting rules.
    response["Content-Disposition"] = f'attachment; filename="audit-log-{tenant}-{stamp}.csv"'
    add_never_cache_headers(response)
    return response


@console_reader
@require_http_methods(["GET"])
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditLogFilterForm(request.GET)
    events = _audit_events(request, form)
    if request.GET.get("format") == "csv":
        return _audit_csv(request, events)

    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    bursts = auditlog.failure_bursts(page.object_list)
    for event in page.object_list:
        event.burst = bursts.get(event.pk)
    filters = {k: v for k, v in request.GET.items() if k in ("client", "action") and v}

    def url(name, **extra):
        params = {**filters, **extra}
        base = reverse(name)
        return f"{base}?{urlencode(params)}" if params else base

    context = {
        "form": form,
        "page": page,
        "events": page.object_list,
        "filtered": bool(filters),
        "export_url": url("apiclients:audit_log_export"),
        "previous_url": url("apiclients:audit_log", page=page.previous_page_number())
        if page.has_previous()
        else None,
        "next_url": url("apiclients:audit_log", page=page.next_page_number())
        if page.has_next()
        else None,
        "results_id": AUDIT_RESULTS_ID,
        "failure_interval": _duration(settings.OAUTH["AUDIT_FAILURE_INTERVAL"]),
    }
    if _htmx(request) and request.htmx.target == AUDIT_RESULTS_ID:
        return render(request, "auditlog/_results.html", context)
    return render(request, "auditlog/page.html", context)


@console_reader
@require_http_methods(["GET"])
def audit_log_export(request: HttpRequest) -> StreamingHttpResponse:
    return _audit_csv(request, _audit_events(request, AuditLogFilterForm(request.GET)))
