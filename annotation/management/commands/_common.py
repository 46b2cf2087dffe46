"""What the commands share: running an import and turning errors into clear messages."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from annotation.pairs.imports import ImportRejected
from annotation.pairs.readers import FileRejected
from annotation.projects.services import project_ensure


def run_import(command, importer, *, path: str, skip_invalid: bool, **kwargs) -> None:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"No such file: {path}")
    try:
        with file.open("rb") as stream:
            report = importer(
                stream=stream, filename=file.name, skip_invalid=skip_invalid, **kwargs
            )
    except ImportRejected as exc:
        raise CommandError(str(exc)) from exc
    except FileRejected as exc:
        raise CommandError(f"Nothing imported: {exc}") from exc
    except ValidationError as exc:
        raise CommandError(validation_message(exc)) from exc
    for error in report.errors:
        command.stderr.write(f"skipped bad row: {error}")
    command.stdout.write(report.summary)


# The help of every command argument that names a project.
PROJECT_HELP = (
    "project name or id; the name is matched first, so 12 is the project named 12 if there is "
    "one, else the project with id 12"
)
LISTED_PROJECTS = 10


def _project_lookup(value: str):
    """The project named `value`, else, when `value` is all digits, the project with that id;
    None if neither. The name is tried first so that a project named "12" stays reachable."""
    from annotation.models import Project

    value = value.strip()
    project = Project.objects.filter(name=value).first()
    if project is None and value.isascii() and value.isdigit():
        project = Project.objects.filter(pk=int(value)).first()
    return project


def unknown_project(value: str) -> str:
    """What a command says when no project has that name or id, with the names there are."""
    from annotation.models import Project

    names = Project.objects.order_by("name").values_list("name", flat=True)
    names = list(names[: LISTED_PROJECTS + 1])
    shown = ", ".join(names[:LISTED_PROJECTS]) + (", ..." if len(names) > LISTED_PROJECTS else "")
    return f"No project named or numbered {value!r}; projects: {shown or 'none yet'}"


def project_argument(value: str):
    """The project a command names by its name or id (_project_lookup); a CommandError listing
    the projects there are when none matches."""
    project = _project_lookup(value)
    if project is None:
        raise CommandError(unknown_project(value))
    return project


def project_for_import(command, value: str):
    """The project an import goes into, by name or id; a new name is created with default
    settings (and said so). Digits that match no project are refused rather than made into a
    project: they are far more often a mistyped id than a wanted name."""
    project = _project_lookup(value)
    if project is not None:
        return project
    if value.strip().isascii() and value.strip().isdigit():
        raise CommandError(
            f"{unknown_project(value)}. Imports create a project from a new name, not from "
            "digits alone: to give a project such a name, create it with New project in the "
            "web app first."
        )
    project, created = project_ensure(name=value)
    if created:
        command.stderr.write(f"created project {project.name!r} with default settings")
    return project


def validation_message(exc: ValidationError) -> str:
    """'field: problem' for each problem, or the plain messages."""
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(problems)}" for field, problems in exc.message_dict.items()
        )
    return " ".join(exc.messages)
