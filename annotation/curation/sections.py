"""Sections that apps built on annotation add to a dataset version's page.

A version is made to be trained on, so its page also shows what the reward-models app does
with it (the training form and the runs). Annotation is the lower layer and names nothing of
that app, so the page cannot ask for that content itself. Instead an app registers, in its
AppConfig.ready, a function that gathers its section for one request: the template to
include and the data it shows, read and permission-checked in Python. The page includes each
section in the order registered, between the downloads and the figures; with no app
registered, the page is annotation's alone.

Why a registry and not a template the view includes by name, or a separate page: the view
stays annotation's (the same URL, access rule and figures) and still knows no reward-model
template; the training form that comes back with its errors re-renders the same page through
`dataset_page` with that bound form.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from annotation.models import CuratedDataset


@dataclass(frozen=True)
class PageSection:
    """A template to include and what it shows, as `section` in its context."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)


# (request, dataset, inputs) -> its section, or None to show nothing to this person. `inputs`
# holds what a view that re-renders the page hands over, such as a bound form with errors.
DatasetSection = Callable[[HttpRequest, CuratedDataset, dict[str, Any]], PageSection | None]

_dataset_sections: list[DatasetSection] = []


def dataset_section_register(section: DatasetSection) -> DatasetSection:
    """Add a section to every dataset page; registering one twice keeps one."""
    if section not in _dataset_sections:
        _dataset_sections.append(section)
    return section


def dataset_sections(
    *, request: HttpRequest, dataset: CuratedDataset, inputs: dict[str, Any] | None = None
) -> list[PageSection]:
    """The sections this request's page shows, in the order they were registered."""
    gathered = (section(request, dataset, inputs or {}) for section in _dataset_sections)
    return [section for section in gathered if section is not None]
