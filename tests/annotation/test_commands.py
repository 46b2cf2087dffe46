"""Commands name a project by its name or its id (annotation/management/commands/_common.py):
the same project either way, the name first, and a clear error listing the projects."""

import json
from io import StringIO

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError

from annotation.models import Label, Pair, Project
from tests.factories import PairFactory, ProjectFactory

PROJECT_COMMANDS = [
    "agreement", "curate", "export_labels", "import_candidates", "import_labels",
    "import_pairs", "import_signals", "judge", "drift", "make_pairs", "register_model",
    "retrain",
]  # fmt: skip


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def labelled(project):
    """Three pairs with two votes each, one of them split."""
    for n in range(3):
        pair = PairFactory(project=project)
        for who in ("ann", "bob"):
            Label.objects.create(pair=pair, source=who, choice="a" if n or who == "ann" else "b")
    return project


def test_a_command_given_the_id_reports_what_it_reports_given_the_name(labelled):
    ProjectFactory(name="Other")
    by_name = json.loads(run("agreement", labelled.name, "--json"))
    by_id = json.loads(run("agreement", str(labelled.pk), "--json"))
    assert by_id == by_name and by_name["n_labels"] == 6


def test_an_import_given_the_id_goes_into_that_project(project, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "2+2?", "response_a": "4", "response_b": "5"}) + "\n")
    assert run("import_pairs", str(project.pk), str(path)).strip() == "imported 1, skipped 0"
    assert list(Pair.objects.values_list("project", flat=True)) == [project.pk]
    assert Project.objects.count() == 1


def test_a_name_made_of_digits_wins_over_the_id_it_spells(project):
    named = ProjectFactory(name=str(project.pk))
    Label.objects.create(pair=PairFactory(project=named), source="ann", choice="a")
    assert json.loads(run("agreement", str(project.pk), "--json"))["n_labels"] == 1
    assert json.loads(run("agreement", project.name, "--json"))["n_labels"] == 0


def test_an_unknown_project_is_a_clear_error_naming_the_projects(db):
    for name in ("beta", "alpha"):
        ProjectFactory(name=name)
    with pytest.raises(CommandError) as raised:
        run("agreement", "Ghost")
    assert str(raised.value) == "No project named or numbered 'Ghost'; projects: alpha, beta"
    with pytest.raises(CommandError, match="No project named or numbered '999999'"):
        run("export_labels", "999999", "--out", "unused.jsonl")


def test_the_list_of_projects_stops_at_ten(db):
    for n in range(12):
        ProjectFactory(name=f"p{n:02}")
    with pytest.raises(CommandError, match=r"projects: p00, p01, .*, p09, \.\.\.$"):
        run("agreement", "Ghost")


def test_an_import_refuses_digits_that_name_no_project_rather_than_create_one(db, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "2+2?", "response_a": "4", "response_b": "5"}) + "\n")
    with pytest.raises(CommandError, match="No project named or numbered '42'"):
        run("import_pairs", "42", str(path))
    assert not Project.objects.exists()
    run("import_pairs", "Arithmetic", str(path))  # a new name still makes a new project
    assert Project.objects.get().name == "Arithmetic"


@pytest.mark.parametrize("name", PROJECT_COMMANDS)
def test_every_command_that_takes_a_project_says_name_or_id(name):
    parser = load_command_class(get_commands()[name], name).create_parser("manage.py", name)
    (action,) = [a for a in parser._actions if a.dest == "project"]
    assert "project name or id" in action.help
