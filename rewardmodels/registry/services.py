"""The registry: models registered from elsewhere, and promotion (gated on an audit) and
demotion."""

import json
import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from annotation.access import user_is_admin
from annotation.activity import Kind, record
from annotation.models import Project
from rewardmodels.evaluation.audits import audit_summary, promotion_check
from rewardmodels.models import (
    Promotion,
    RewardModel,
)
from rewardmodels.training.services import model_folder

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model")


def model_register(*, project: Project, identifier: str, source: str) -> RewardModel:
    """Register an existing reward model, as it is, in a project: a sequence-classification
    model with one output, from a folder or the Hugging Face cache (found offline on this
    host; workers load it from the same path). It is then evaluated, compared, used for
    scoring and pair-making, promoted and trained on like the project's own models."""
    if not re.fullmatch(r"[\w.@+-]{1,150}", identifier):
        raise ValidationError("Name it with letters, digits and . @ + - _ (150 at most).")
    if RewardModel.objects.filter(identifier=identifier).exists():
        raise ValidationError(f"A reward model is already named {identifier!r}.")
    folder = model_folder(source)
    if folder is None:
        raise ValidationError(
            f"Cannot find {source!r}: give a folder with config.json, or a model id already in "
            "the Hugging Face cache (nothing is downloaded)."
        )
    config = json.loads((folder / "config.json").read_text())
    architectures = config.get("architectures") or []
    outputs = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise ValidationError(
            f"{source} is not a sequence-classification model (its architectures: "
            f"{', '.join(architectures) or 'none named'}); a reward model has a score head."
        )
    if outputs != 1:
        raise ValidationError(
            f"{source} has {outputs} outputs; a reward model gives one scalar reward."
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ValidationError(f"{source} has no tokenizer files beside its weights.")
    return RewardModel.objects.create(
        identifier=identifier, project=project, base_model=source,
        artifact=str(folder.resolve()),
    )  # fmt: skip


def model_promote(
    *,
    reward_model: RewardModel,
    user: AbstractBaseUser | None,
    reason: str = "",
    override: bool = False,
) -> Promotion:
    """Make this the model that serves its project (scoring without a named model); the
    one promoted before steps down. Recorded with who and why, and with the audit it was
    decided on: a model that has none on its project's held-out data, or whose audit holds
    it back (rewardmodels.evaluation.audits), is refused with the reason, unless an admin (or
    the command line, user None) overrides with a reason of their own."""
    check = promotion_check(reward_model=reward_model)
    if not check.passed:
        held_back = "; ".join(check.held_back)
        if not override:
            raise ValidationError(
                f"Not promoted: {held_back}. An admin can promote it all the same, with a reason."
            )
        if user is not None and not user_is_admin(user):
            raise ValidationError(f"Not promoted: {held_back}. Only an admin can override.")
        if not reason.strip():
            raise ValidationError(f"Say why you promote it although {held_back}.")
    promotion = Promotion.objects.create(
        project_id=reward_model.project_id, reward_model=reward_model, promoted=True,
        reason=reason.strip(), decided_by=user, audit=check.audit,
        audit_figures=audit_summary(check.audit), overridden=not check.passed,
    )  # fmt: skip
    overridden = f" over the audit ({'; '.join(check.held_back)})" if not check.passed else ""
    record(
        Kind.MODEL_PROMOTED,
        actor=user,
        project=reward_model.project,
        target=reward_model,
        summary=f"{reason.strip() or 'Promoted'}{overridden}",
    )
    return promotion


def model_demote(
    *, reward_model: RewardModel, user: AbstractBaseUser | None, reason: str = ""
) -> Promotion:
    """Take the promoted model down: its project then has none until another is promoted."""
    from rewardmodels.access import promoted_model

    project_id = reward_model.project_id
    current = promoted_model(project_id=project_id)
    if current is None or current.pk != reward_model.pk:
        raise ValidationError(f"{reward_model.identifier} is not the promoted model.")
    demotion = Promotion.objects.create(
        project_id=project_id, reward_model=reward_model, promoted=False,
        reason=reason.strip(), decided_by=user,
    )  # fmt: skip
    record(
        Kind.MODEL_DEMOTED,
        actor=user,
        project=reward_model.project,
        target=reward_model,
        summary=reason.strip(),
    )
    return demotion
