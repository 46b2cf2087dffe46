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


def project_for_import(command, name: str):
    """The project an import goes into, created with default settings (and said so) if new."""
    project, created = project_ensure(name=name)
    if created:
        command.stderr.write(f"created project {project.name!r} with default settings")
    return project


def project_named(name: str):
    from annotation.models import Project

    project = Project.objects.filter(name=name).first()
    if project is None:
        raise CommandError(f"No project named {name!r}.")
    return project


def validation_message(exc: ValidationError) -> str:
    """'field: problem' for each problem, or the plain messages."""
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(problems)}" for field, problems in exc.message_dict.items()
        )
    return " ".join(exc.messages)
