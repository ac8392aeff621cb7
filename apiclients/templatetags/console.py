from django import template
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from apiclients import auditlog, hygiene

register = template.Library()


def _time(value, mode: str, extra: str = "") -> str:
    local = timezone.localtime(value)
    # strftime, not Django's date formats: the list shows three dates per row,
    # and strftime is several times faster. The zone is always named; app.js
    # rewrites the text in the viewer's own time zone.
    zone = escape(local.tzname() or "")
    shown = f"{local.strftime('%Y-%m-%d %H:%M')} {zone}".strip()
    return mark_safe(  # noqa: S308 (digits, and the escaped zone name)
        f'<time datetime="{value.isoformat()}" data-when="{mode}"{extra}>{shown}</time>'
    )


@register.filter
def when(value, empty: str = "—"):
    """A timestamp as <time>, in the site's time zone (UTC unless TIME_ZONE
    says otherwise) with the zone named; `empty` when unset."""
    return _time(value, "absolute") if value else empty


@register.filter
def since(value, empty: str = "—"):
    """As `when`, shown in the browser as "3 minutes ago" (the date and time
    in its title), where recency is what matters."""
    return _time(value, "relative") if value else empty


@register.filter
def until(value, start):
    """The end of a span that began at `start`: in the browser only the clock
    when both fall on the same day there ("between 10:31 and 10:40")."""
    return _time(value, "until", f' data-from="{start.isoformat()}"') if value else "—"


@register.filter
def when_since(value, empty: str = "—"):
    """As `when`, followed in the browser by "(3 minutes ago)"."""
    return _time(value, "both") if value else empty


@register.filter
def audit_lines(event) -> list[str]:
    return auditlog.describe(event, hide_suppressed=bool(getattr(event, "burst", None)))


@register.simple_tag(takes_context=True)
def require(context, *names):
    """Components call this first: they refuse to render without the
    variables they need, instead of rendering something half-broken."""
    missing = [name for name in names if not context.get(name)]
    if missing:
        raise template.TemplateSyntaxError(f"{context.template_name} needs: {', '.join(missing)}")
    return ""


@register.simple_tag
def client_badges(client, now) -> list:
    return hygiene.badges(client, now)


@register.filter
def days_ago(days: int) -> str:
    if days <= 0:
        return "today"
    return "yesterday" if days == 1 else f"{days} days ago"
