"""Templates keep to the apps' layers, and template tags only format what a view hands them.

Annotation is the lower layer: its pages, the shared partials in templates/_ui/ and the pages
every app extends (base, errors, sign-in) name no reward-model template, tag library or
static file, so annotation works and reads on its own. What a page shows, and who may see
it, is decided by its view: a template tag formats values and runs no query."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.template import engines
from django.template.backends.django import Template
from django.test.utils import CaptureQueriesContext

from rewardmodels.models import TrainingRun
from tests.conftest import logged_in

TEMPLATES = Path(settings.BASE_DIR) / "templates"
UPPER_APP = "rewardmodels"
TAG = re.compile(r"\{%\s*(\w+)(.*?)%\}", re.DOTALL)
QUOTED = re.compile(r"""["']([^"']*)["']""")


def lower_layer_templates() -> list[Path]:
    """Every template outside templates/rewardmodels/: annotation's, the shared ones and the
    top-level pages."""
    return [
        path
        for path in sorted(TEMPLATES.rglob("*.html"))
        if path.relative_to(TEMPLATES).parts[0] != UPPER_APP
    ]


def upper_tag_libraries() -> set[str]:
    """The `{% load %}` names whose module belongs to the reward-models app."""
    libraries = engines["django"].engine.libraries
    return {name for name, module in libraries.items() if module.startswith(f"{UPPER_APP}.")}


def upper_references(text: str, upper_libraries: set[str]) -> list[str]:
    """Each tag in `text` that loads a reward-model tag library or names a path under
    rewardmodels/ (include, extends, static and the like)."""
    found = []
    for match in TAG.finditer(text):
        name, arguments = match.group(1), match.group(2).split()
        if name == "load":
            loaded = arguments[-1:] if "from" in arguments else arguments
            if upper_libraries.intersection(loaded):
                found.append(match.group(0))
                continue
        if any(path.startswith(f"{UPPER_APP}/") for path in QUOTED.findall(match.group(2))):
            found.append(match.group(0))
    return found


def test_the_scan_sees_each_way_of_naming_a_reward_model_file():
    libraries = upper_tag_libraries() | {"model_panels"}  # one the app may add later
    text = """{% load static held_out %}{% include "rewardmodels/_x.html" %}
    {% extends 'rewardmodels/base.html' %}<script src="{% static 'rewardmodels/a.js' %}">
    {% load model_panels %}{% load accuracy_range from held_out %}{% include "_ui/_pager.html" %}
    {% load static agreement %}{% url 'run' 3 %}"""
    assert len(upper_references(text, libraries)) == 6


def test_annotation_and_shared_templates_name_nothing_of_reward_models():
    libraries = upper_tag_libraries()
    offenders = {
        str(path.relative_to(TEMPLATES)): found
        for path in lower_layer_templates()
        if (found := upper_references(path.read_text(), libraries))
    }
    assert offenders == {}, (
        "annotation's and shared templates must not use the rewardmodels app's templates, "
        "tag libraries or static files; move what both use to templates/_ui/ or static/ui/"
    )


TAG_MODULES = sorted(
    path
    for path in Path(settings.BASE_DIR).glob("*/templatetags/*.py")
    if path.name != "__init__.py"
)
QUERY_ATTRIBUTES = {
    "objects", "filter", "exclude", "all", "defer", "only", "select_related",
    "prefetch_related", "values_list", "annotate", "aggregate", "order_by", "exists", "raw",
}  # fmt: skip
WHO_ATTRIBUTES = {"user", "is_staff", "is_superuser", "has_perm", "has_perms"}
READS_OR_ACCESS = re.compile(r"(^|\.)(models|selectors|access)(\.|$)|^django\.(db|contrib\.auth)")


def database_or_permission_uses(source: str) -> list[str]:
    """What in a template tag module reads the database or the person looking: queryset
    calls, model, selector and access imports, the request or its user."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            modules = []
        found += [f"line {node.lineno}: import {m}" for m in modules if READS_OR_ACCESS.search(m)]
        if (
            isinstance(node, ast.Attribute)
            and node.attr in QUERY_ATTRIBUTES | WHO_ATTRIBUTES
            and not (isinstance(node.value, ast.Name) and node.value.id == "register")
        ):
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Constant) and node.value == "request":
            found.append(f"line {node.lineno}: the request")
    return found


def test_the_tag_scan_sees_queries_and_permission_checks():
    source = (
        "from annotation.access import user_is_admin\nfrom annotation.models import Pair\n"
        "def tag(context, dataset):\n"
        "    return user_is_admin(context['request'].user), dataset.runs.defer('x')[:10]\n"
    )
    assert len(database_or_permission_uses(source)) == 5
    assert (
        database_or_permission_uses("from annotation.rendering import x\n'{:.1f}'.format(1)") == []
    )


@pytest.mark.parametrize("module", TAG_MODULES, ids=lambda path: f"{path.parts[-3]}.{path.stem}")
def test_template_tags_run_no_query_and_check_no_permission(module):
    assert database_or_permission_uses(module.read_text()) == [], (
        "a template tag formats what the view passes; the view reads the rows and decides "
        "who sees what"
    )


@pytest.fixture
def queries_while_rendering(monkeypatch) -> list[str]:
    """The SQL run while a page's template renders, after its view has gathered the data."""
    seen: list[str] = []
    render = Template.render

    def render_counting(self, context=None, request=None):
        with CaptureQueriesContext(connection) as captured:
            html = render(self, context, request)
        seen.extend(query["sql"] for query in captured.captured_queries)
        return html

    monkeypatch.setattr(Template, "render", render_counting)
    return seen


def test_the_dataset_page_shows_training_without_querying_from_its_template(
    dataset, admin_user, queries_while_rendering
):
    run = TrainingRun.objects.create(dataset=dataset)
    page = logged_in(admin_user).get(f"/datasets/{dataset.identifier}/").content.decode()
    assert 'id="train-form"' in page and f'href="/runs/{run.pk}/">Run {run.pk}</a>' in page
    assert queries_while_rendering == []


def test_the_training_form_with_errors_renders_without_querying(
    dataset, admin_user, queries_while_rendering
):
    response = logged_in(admin_user).post(f"/datasets/{dataset.identifier}/train/", {})
    assert response.status_code == 400 and 'id="train-form"' in response.content.decode()
    assert "errorlist" in response.content.decode()
    assert queries_while_rendering == []


def test_the_dataset_page_stands_without_the_sections_other_apps_add(
    dataset, admin_user, monkeypatch
):
    monkeypatch.setattr("annotation.curation.sections._dataset_sections", [])
    response = logged_in(admin_user).get(f"/datasets/{dataset.identifier}/")
    page = response.content.decode()
    assert response.status_code == 200 and 'id="summary"' in page and 'id="train"' not in page
