"""Reads of evaluations: the versions with a test split, a model's latest evaluation and
figures, its latest calibration against people, and the pairs an evaluation got wrong
with the project whose review pages they link to."""

import json
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from annotation.access import user_is_admin
from annotation.models import CuratedDataset, Membership
from rewardmodels.models import EvaluationRun, RewardModel


def datasets_with_test_split(*, user: AbstractBaseUser) -> QuerySet[CuratedDataset]:
    """Dataset versions with a test split that the user may evaluate on, newest first."""
    datasets = CuratedDataset.objects.filter(n_test__gt=0).select_related("project")
    if user_is_admin(user):
        return datasets
    led = Membership.objects.filter(user=user, role=Membership.Role.LEAD).values("project_id")
    return datasets.filter(project_id__in=led)


def evaluation_latest(
    *, reward_model: RewardModel, dataset: CuratedDataset, succeeded: bool = True
) -> EvaluationRun | None:
    """The newest succeeded evaluation on a version's test split, or (succeeded=False) the
    newest one still queued or running."""
    wanted = (
        [EvaluationRun.Status.SUCCEEDED]
        if succeeded
        else [EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
    )
    return (
        reward_model.evaluations.filter(dataset=dataset, status__in=wanted)
        .order_by("-created_at", "-pk")
        .first()
    )


def model_metrics(
    *, reward_model: RewardModel, dataset: CuratedDataset | None
) -> tuple[dict, EvaluationRun | None]:
    """The figures to compare a model by. With no `dataset`, on its own version's test split:
    the final figures its run measured there, else its latest succeeded evaluation there.
    On a chosen version's test split: its latest evaluation there, else, when that version
    is its own, its run's final figures (an evaluation of those very pairs). Empty figures
    when there are none yet (always, for a registered model's own split: it has none)."""
    final = reward_model.run.final_metrics if reward_model.run_id else {}
    if dataset is None and final:
        return final, None
    target = dataset or reward_model.dataset
    if target is None:
        return {}, None
    evaluation = evaluation_latest(reward_model=reward_model, dataset=target)
    if evaluation:
        return evaluation.metrics, evaluation
    if final and target.pk == reward_model.dataset_id:
        return final, None
    return {}, None


def people_calibration_latest(*, reward_model: RewardModel) -> tuple[dict, EvaluationRun | None]:
    """The newest calibration against people's votes measured for a model: its newest
    succeeded evaluation on pairs with two or more votes, else its run's final held-out
    figures where they had such pairs; ({}, None) when neither did."""
    evaluation = (
        reward_model.evaluations.filter(
            status=EvaluationRun.Status.SUCCEEDED, metrics__people_calibration__n__gt=0
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if evaluation:
        return evaluation.metrics["people_calibration"], evaluation
    final = reward_model.run.final_metrics if reward_model.run_id else {}
    calibration = (final or {}).get("people_calibration") or {}
    return (calibration, None) if calibration.get("n") else ({}, None)


ANY = object()  # a filter of wrong_pairs_filtered that is not applied


def evaluation_wrong_pairs(*, evaluation: EvaluationRun) -> list[dict] | None:
    """The pairs the evaluation got wrong, the most confident mistake first (the rejected
    response's reward furthest above the chosen one's), each with its result and the start
    of its prompt and responses; None where the evaluation kept no pairs' results (made
    before they were kept, or the file is gone). Reads only the wrong pairs: the file holds
    them first."""
    path = Path(evaluation.pair_results_file) if evaluation.pair_results_file else None
    if path is None or not path.is_file():
        return None
    wrong = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            result = json.loads(line)
            if result["right"]:
                break
            wrong.append(result)
    return wrong


def evaluation_pairs_project(*, evaluation: EvaluationRun) -> int | None:
    """The project whose review pages the evaluation's pairs link to: its dataset version's
    or round's; None for an uploaded file, whose pairs are rows of the file."""
    if evaluation.dataset_id:
        return evaluation.dataset.project_id
    return evaluation.round.project_id if evaluation.round_id else None


def wrong_pairs_filtered(pairs: list[dict], *, difficulty=ANY, chosen_longer=ANY) -> list[dict]:
    """Those of `pairs` of this difficulty (None: not known) and whose chosen response was
    (True) or was not (False) the longer one, in their order."""
    return [
        pair
        for pair in pairs
        if (difficulty is ANY or pair["difficulty"] == difficulty)
        and (chosen_longer is ANY or pair["chosen_longer"] == chosen_longer)
    ]
