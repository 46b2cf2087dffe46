"""Curated dataset versions: a selection snapshotted with its manifest and content hash, and written
out in formats TRL and `datasets` read."""

import hashlib
import json
import re
from dataclasses import asdict

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.activity import Kind, record
from annotation.curation.selection import (
    NAME_MAX_CHARS,
    NAME_PATTERN,
    CurationFilters,
    curation_select,
    selection_rows,
)
from annotation.models import CuratedDataset, Project


def dataset_curate(
    *, project: Project, name: str, filters: CurationFilters, user: AbstractBaseUser | None
) -> CuratedDataset:
    """Snapshot what the filters keep as a new, immutable dataset version."""
    if not re.fullmatch(NAME_PATTERN, name) or len(name) > NAME_MAX_CHARS:
        raise ValidationError(
            {
                "name": f"Use lower-case letters, digits and hyphens, e.g. harmless-v1, "
                f"{NAME_MAX_CHARS} characters at most."
            }
        )
    elsewhere = CuratedDataset.objects.filter(name=name).exclude(project=project).first()
    if elsewhere:
        raise ValidationError({"name": f"{name!r} names datasets of project {elsewhere.project}."})
    selection = curation_select(project=project, filters=filters)
    if not selection.count:
        detail = "; ".join(f"{k}: {v}" for k, v in selection.dropped.items()) or "no labels"
        raise ValidationError(f"These filters keep no pairs ({detail}); no version was made.")
    rows, conversational = selection_rows(selection, filters)
    content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    digest = hashlib.sha256(content).hexdigest()
    n_test = sum(row["split"] == "test" for row in rows)
    with transaction.atomic():
        latest = (
            CuratedDataset.objects.select_for_update()
            .filter(name=name)
            .order_by("-version")
            .first()
        )
        version = latest.version + 1 if latest else 1
        path = default_storage.save(
            f"datasets/{name}/v{version}-{digest[:12]}.jsonl", ContentFile(content)
        )
        manifest = {
            "identifier": f"{name}@v{version}",
            "project": {"id": project.pk, "name": project.name},
            "filters": asdict(filters),
            "consensus": selection.consensus,
            "rows": len(rows),
            "splits": {"train": len(rows) - n_test, "test": n_test},
            "by_difficulty": selection.by_difficulty,
            "by_label_source": selection.by_source,
            "dropped": selection.dropped,
            "dropped_annotators": selection.dropped_annotators,
            "notes": selection.notes,
            **({"balance_length": selection.balance_length} if filters.balance_length else {}),
            "format": "conversational" if conversational else "standard",
            "sha256": digest,
            "created_by": user.get_username() if user else None,
            "created_at": timezone.now().isoformat(),
        }
        try:
            dataset = CuratedDataset.objects.create(
                project=project,
                name=name,
                version=version,
                identifier=manifest["identifier"],
                filters=manifest["filters"],
                manifest=manifest,
                sha256=digest,
                snapshot=path,
                n_rows=len(rows),
                n_train=len(rows) - n_test,
                n_test=n_test,
                created_by=user,
            )
        except IntegrityError as exc:
            default_storage.delete(path)
            raise ValidationError(
                "Another version was made at the same moment; try again."
            ) from exc
        summary = f"{len(rows)} pairs ({len(rows) - n_test} train, {n_test} test)"
        record(Kind.DATASET_CURATED, actor=user, project=project, target=dataset, summary=summary)
        return dataset
