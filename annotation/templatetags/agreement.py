"""Formatting for agreement figures: None shows as n/a, never as an error, and so does a key
missing from a figures dictionary (the template hands such a lookup over as "")."""

from django import template
from django.utils.html import format_html

register = template.Library()

NOT_AVAILABLE = format_html('<span class="muted" title="{}">n/a</span>', "cannot be computed yet")


@register.filter
def figure(value, digits: int = 3):
    if value is None or value == "":
        return NOT_AVAILABLE
    return f"{value:.{int(digits)}f}"


@register.filter
def percent(value):
    if value is None or value == "":
        return NOT_AVAILABLE
    return f"{100 * value:.1f}%"


@register.filter
def percent_range(interval) -> str:
    """'53.3–63.4%' for a [low, high] interval of shares; empty where there is none (a side
    with no pairs, or figures from before the interval was recorded)."""
    if not isinstance(interval, list | tuple) or len(interval) != 2 or None in interval:
        return ""
    return f"{100 * interval[0]:.1f}–{100 * interval[1]:.1f}%"


@register.filter
def bias_class(value) -> str:
    """Flag a left or longer rate far from 0.5."""
    if value is None:
        return ""
    return "bias" if abs(value - 0.5) >= 0.15 else ""
