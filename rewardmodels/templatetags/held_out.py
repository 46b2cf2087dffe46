"""Held-out accuracy in templates: its 95% interval, recorded or (older figures) computed."""

from django import template

from annotation.agreement.maths import DIFFICULTIES
from rewardmodels.training.held_out import accuracy_interval, interval_text

register = template.Library()


@register.filter
def accuracy_range(figures) -> str:
    """'53.3–63.4%', the 95% interval of a figures dictionary's accuracy; empty without one."""
    interval = accuracy_interval(figures) if isinstance(figures, dict) else None
    return interval_text(interval) if interval else ""


@register.filter
def ci95(figures) -> str:
    """'95% CI 53.3–63.4%'; empty where the figures hold no accuracy."""
    shown = accuracy_range(figures)
    return f"95% CI {shown}" if shown else ""


@register.filter
def by_difficulty(figures) -> list[tuple[str, dict]]:
    """The accuracy by difficulty, easiest first: (name, {accuracy, n}) for each one measured."""
    parts = (figures or {}).get("by_difficulty") or {}
    return [(name, parts[name]) for name in DIFFICULTIES if name in parts]
