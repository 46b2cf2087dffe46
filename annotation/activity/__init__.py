"""The activity log: every change a lead or admin would ask about later, with who, when,
from which address, to what object and what changed (never a secret's value).

Services call `record` once for what they did; the request in hand (web page or API) gives
the person and the address through `ActivityContext`, a command passes its user."""

from annotation.activity.log import Kind, activity_trim, changed, record

__all__ = ["Kind", "activity_trim", "changed", "record"]
