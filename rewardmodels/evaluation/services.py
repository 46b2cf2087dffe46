"""Evaluations of a model on labelled pairs (a file, a version's test split, a round's held-
out pairs), queued on the scoring queue."""

from functools import partial
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.curation.selectors import held_out_rows
from annotation.jobs import job_send
from annotation.models import CuratedDataset, Round
from rewardmodels.formats import read_preference_pairs, upload_path, write_jsonl
from rewardmodels.models import (
    EvaluationRun,
    Retraining,
    RewardModel,
)

EVALUATE_TASK = "rewardmodels.evaluate"


def evaluation_create(
    *,
    reward_model: RewardModel,
    user: AbstractBaseUser | None,
    dataset: CuratedDataset | None = None,
    upload=None,
    fmt: str = "auto",
    retraining: Retraining | None = None,
) -> EvaluationRun:
    """Queue an evaluation on a dataset version's test split, or on an uploaded file of
    labelled pairs (checked here: a bad file is refused whole, with its lines named)."""
    if (dataset is None) == (upload is None):
        raise ValidationError("Evaluate on a dataset version or on an uploaded file.")
    evaluation = EvaluationRun(
        reward_model=reward_model, created_by=user, dataset=dataset, retraining=retraining
    )
    if dataset is not None:
        if dataset.n_test == 0:
            raise ValidationError(f"{dataset.identifier} has no test split.")
        evaluation.total = 2 * dataset.n_test
    else:
        rows = read_preference_pairs(upload, upload.name, fmt)
        evaluation.upload_name = upload.name[:255]
        evaluation.pairs_file = str(upload_path("evaluations"))
        evaluation.total = 2 * len(rows)
        write_jsonl(Path(evaluation.pairs_file), rows)
    with transaction.atomic():
        evaluation.save()
        transaction.on_commit(lambda: job_send(EvaluationRun, evaluation.pk, EVALUATE_TASK))
    return evaluation


def round_evaluations_create(
    *,
    round_: Round,
    reward_models: list[RewardModel],
    user: AbstractBaseUser | None,
    retraining: Retraining | None = None,
) -> list[EvaluationRun]:
    """Queue evaluations of these models on a round's fresh held-out set: its pairs with a
    consensus now, worked out once and kept in one file the evaluations share.
    ValidationError when the round has no labelled held-out pair yet."""
    rows = held_out_rows(round_)
    if not rows:
        raise ValidationError(
            f"Round {round_.name} has no labelled held-out pairs yet (pairs made from its "
            "held-out prompts, with a consensus)."
        )
    path = upload_path("evaluations")
    write_jsonl(path, rows)
    evaluations = [
        EvaluationRun(
            reward_model=reward_model, created_by=user, round=round_, retraining=retraining,
            pairs_file=str(path), total=2 * len(rows),
        )
        for reward_model in reward_models
    ]  # fmt: skip
    with transaction.atomic():
        for evaluation in evaluations:
            evaluation.save()
            transaction.on_commit(partial(job_send, EvaluationRun, evaluation.pk, EVALUATE_TASK))
    return evaluations
