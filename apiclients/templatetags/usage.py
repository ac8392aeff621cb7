"""The usage summary in a client's drawer, rendered from its own template
so that the drawer includes it with one line."""

from django import template

from apiclients import usagelog

register = template.Library()


@register.inclusion_tag("apiclients/_usage.html")
def usage_summary(client, now):
    return {"client": client, "now": now, "usage": usagelog.summary(client, now)}


@register.filter
def outcome_label(outcome: str) -> str:
    return usagelog.OUTCOME_LABELS.get(outcome, outcome.replace("_", " ").capitalize())


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key, key)
