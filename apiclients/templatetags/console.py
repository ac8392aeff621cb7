from django import template
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from apiclients import auditlog, hygiene

register = template.Library()


@register.filter
def when(value, empty: str = "—"):
    """A timestamp as <time>, in the site's time zone; `empty` when unset."""
    if not value:
        return empty
    local = timezone.localtime(value)
    # strftime, not Django's date formats ("Y-m-d H:i:s T", "Y-m-d H:i"): the
    # list shows three dates per row, and those formats were a third of the
    # time it took to render a page of 25 clients.
    shown = local.strftime("%Y-%m-%d %H:%M")
    title = f"{shown}:{local.second:02d} {escape(local.tzname() or '')}"
    return mark_safe(  # noqa: S308 (digits, and the escaped zone name)
        f'<time datetime="{value.isoformat()}" title="{title}">{shown}</time>'
    )


@register.filter
def audit_lines(event) -> list[str]:
    return auditlog.describe(event)


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
