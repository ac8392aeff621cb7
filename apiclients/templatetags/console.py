from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

from apiclients import auditlog, hygiene

register = template.Library()


@register.filter
def when(value, empty: str = "—"):
    """A timestamp as <time>, in the site's time zone; `empty` when unset."""
    if not value:
        return empty
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        date_format(local, "Y-m-d H:i:s T"),
        date_format(local, "Y-m-d H:i"),
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
