"""Retraining's decision, its failures, the automatic trigger, and the drift page and API.
The loop through training itself is in test_retraining_loop.py; here the runs and the
evaluations are rows with figures, so each rule is checked on its own."""

import pytest
from django.core.exceptions import ValidationError

from annotation.models import Label, Round
from rewardmodels.access import promoted_model
from rewardmodels.models import (
    Audit,
    EvaluationRun,
    Promotion,
    Retraining,
    RewardModel,
    TrainingRun,
)
from rewardmodels.registry.services import model_promote
from rewardmodels.retraining.services import retrain_due, retraining_advance, retraining_start
from tests.conftest import client_for, logged_in
from tests.factories import PairFactory, passing_audit


def figures(accuracy: float, n: int = 200) -> dict:
    return {"accuracy": accuracy, "n": n}


@pytest.fixture
def rounds(project):
    return [
        Round.objects.create(project=project, name=name, held_out_share=0.2)
        for name in ("r1", "r2")
    ]


def evaluated(reward_model, round_, accuracy, retraining=None) -> EvaluationRun:
    return EvaluationRun.objects.create(
        reward_model=reward_model, round=round_, retraining=retraining,
        status=EvaluationRun.Status.SUCCEEDED, metrics=figures(accuracy),
    )  # fmt: skip


def audited(reward_model, retraining, flip_rate: float = 0.0) -> Audit:
    """The retraining's audit of its new model, done, the padding probe at `flip_rate`."""
    audit = passing_audit(reward_model)
    audit.results["probes"][0].update(flip_rate=flip_rate, flipped=int(flip_rate * 12))
    Audit.objects.filter(pk=audit.pk).update(retraining=retraining, results=audit.results)
    return audit


def retrained(dataset, previous, status=TrainingRun.Status.SUCCEEDED):
    """A retraining whose run has ended (with a model where it succeeded), evaluating."""
    run = TrainingRun.objects.create(
        dataset=dataset, status=status, start_from=previous, final_metrics=figures(0.9)
    )
    if status == TrainingRun.Status.SUCCEEDED:
        RewardModel.objects.create(
            identifier=f"rm-{run.pk}", project=dataset.project, run=run, dataset=dataset,
            base_model=run.base_model, artifact=previous.artifact,
        )  # fmt: skip
    return Retraining.objects.create(
        project=dataset.project, run=run, previous=previous,
        status=Retraining.Status.EVALUATING if status == "succeeded" else "training",
    )  # fmt: skip


@pytest.mark.parametrize(("new_accuracy", "promoted"), [(0.795, True), (0.7, False)])
def test_the_new_model_is_promoted_unless_worse_by_more_than_the_tolerance(
    dataset, reward_model, rounds, new_accuracy, promoted
):
    passing_audit(reward_model)
    model_promote(reward_model=reward_model, user=None)
    retraining = retrained(dataset, reward_model)
    new = RewardModel.objects.get(run=retraining.run)
    evaluated(reward_model, rounds[0], 0.6, retraining)
    evaluated(new, rounds[0], 0.95, retraining)  # better on the older round: not the basis
    evaluated(reward_model, rounds[1], 0.8, retraining)
    evaluated(new, rounds[1], new_accuracy, retraining)
    audited(new, retraining)
    retraining_advance(retraining.pk)
    retraining.refresh_from_db()
    assert retraining.status == Retraining.Status.DECIDED and retraining.promoted is promoted
    decision = retraining.decision
    assert decision["basis"] == "round r2's held-out set" and decision["tolerance"] == 0.01
    assert decision["metrics"][new.identifier]["accuracy"] == new_accuracy
    assert set(decision["rounds"]) == {"r1", "r2"}
    serving = promoted_model(project_id=dataset.project_id)
    assert serving == (new if promoted else reward_model)
    if not promoted:
        assert "rm-1-fruit-v1 stays promoted" in decision["reason"]
        assert Promotion.objects.count() == 1  # nothing recorded as a promotion
    retraining_advance(retraining.pk)  # once decided, it stays decided
    assert Promotion.objects.count() == (2 if promoted else 1)


def test_an_audit_that_flips_too_many_pairs_holds_the_promotion_back(dataset, reward_model, rounds):
    passing_audit(reward_model)
    model_promote(reward_model=reward_model, user=None)
    retraining = retrained(dataset, reward_model)
    new = RewardModel.objects.get(run=retraining.run)
    evaluated(reward_model, rounds[1], 0.8, retraining)
    evaluated(new, rounds[1], 0.9, retraining)  # better, but gamed by padding
    audited(new, retraining, flip_rate=0.25)
    retraining_advance(retraining.pk)
    retraining.refresh_from_db()
    assert retraining.status == Retraining.Status.DECIDED and retraining.promoted is False
    assert "Its audit holds it back: the padding probe flips 25.0%" in retraining.decision["reason"]
    assert promoted_model(project_id=dataset.project_id) == reward_model


def test_it_waits_for_every_evaluation_and_fails_with_a_failed_one(dataset, reward_model, rounds):
    retraining = retrained(dataset, reward_model)
    new = RewardModel.objects.get(run=retraining.run)
    evaluated(reward_model, rounds[0], 0.8, retraining)
    pending = EvaluationRun.objects.create(reward_model=new, round=rounds[0], retraining=retraining)
    retraining_advance(retraining.pk)
    assert Retraining.objects.get(pk=retraining.pk).status == Retraining.Status.EVALUATING
    EvaluationRun.objects.filter(pk=pending.pk).update(status="failed", error="CUDA OOM")
    retraining_advance(retraining.pk)
    retraining.refresh_from_db()
    assert retraining.status == Retraining.Status.FAILED
    assert retraining.error == f"Evaluation {pending.pk} failed: CUDA OOM"


def test_a_failed_run_fails_the_retraining(dataset, reward_model):
    retraining = retrained(dataset, reward_model, status=TrainingRun.Status.FAILED)
    retraining_advance(retraining.pk)
    retraining.refresh_from_db()
    assert retraining.status == Retraining.Status.FAILED
    assert retraining.error == f"Training run {retraining.run.pk} failed."


def test_without_labelled_rounds_the_models_meet_on_the_new_test_split(
    dataset, reward_model, django_capture_on_commit_callbacks
):
    retraining = retrained(dataset, reward_model)
    Retraining.objects.filter(pk=retraining.pk).update(status=Retraining.Status.TRAINING)
    with django_capture_on_commit_callbacks() as queued:
        retraining_advance(retraining.pk)
    (evaluation,) = EvaluationRun.objects.filter(retraining=retraining)
    assert evaluation.reward_model == reward_model and evaluation.dataset == dataset
    (audit,) = Audit.objects.filter(retraining=retraining)  # the new model, on the same pairs
    assert audit.reward_model.run == retraining.run and audit.dataset == dataset
    assert len(queued) == 2
    EvaluationRun.objects.filter(pk=evaluation.pk).update(
        status=EvaluationRun.Status.SUCCEEDED, metrics=figures(0.85)
    )
    retraining_advance(retraining.pk)
    assert Retraining.objects.get(pk=retraining.pk).status == "evaluating"  # the audit runs
    Audit.objects.filter(pk=audit.pk).update(
        status=Audit.Status.SUCCEEDED, results=passing_audit(reward_model).results
    )
    retraining_advance(retraining.pk)
    retraining.refresh_from_db()
    assert retraining.decision["basis"] == "fruit@v1's test split"
    assert retraining.promoted  # 0.90 against 0.85


def test_retraining_refuses_what_it_cannot_do(dataset, reward_model, project):
    with pytest.raises(ValidationError, match="no dataset named 'apples'"):
        retraining_start(project=project, dataset_name="apples", start_from=None, user=None)
    retrained(dataset, reward_model, status=TrainingRun.Status.RUNNING)
    with pytest.raises(ValidationError, match="under way"):
        retraining_start(project=project, dataset_name="fruit", start_from=None, user=None)


def test_the_label_count_starts_a_retraining_from_the_promoted_model(
    dataset, reward_model, project, django_capture_on_commit_callbacks
):
    passing_audit(reward_model)
    model_promote(reward_model=reward_model, user=None)
    project.retrain_dataset, project.retrain_after_labels = "fruit", 3
    project.save()
    assert retrain_due() == []  # no label since fruit@v1
    for _ in range(3):
        Label.objects.create(pair=PairFactory(project=project), source="imported", choice="a")
    with django_capture_on_commit_callbacks() as queued:
        (started,) = retrain_due()
    assert started.automatic and started.run.start_from == reward_model
    assert started.run.dataset.identifier == "fruit@v2" and len(queued) == 1
    assert retrain_due() == []  # one under way: the next waits for it


def test_drift_page_warns_and_only_admins_retrain(
    dataset, reward_model, rounds, project, lead, annotator, admin_user
):
    passing_audit(reward_model)
    model_promote(reward_model=reward_model, user=None)  # its own test split: 90%
    evaluated(reward_model, rounds[0], 0.88)
    evaluated(reward_model, rounds[1], 0.7)
    page = logged_in(lead).get(f"/projects/{project.pk}/models/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="drift-warning"' in html
    assert "scores 70.0% on round r2&#x27;s held-out set against 90.0%" in html  # escaped
    # A difference of two accuracies is in points, not a share of either.
    assert "20.0 points lower (the project warns beyond 5.0 points)" in html
    assert "63.3–75.9%" in html  # the cell's 95% interval
    assert 'id="retrain-form"' not in html
    assert logged_in(annotator).get(f"/projects/{project.pk}/models/").status_code == 404
    refused = logged_in(lead).post(f"/projects/{project.pk}/models/retrain/", {"dataset": "fruit"})
    assert refused.status_code == 404 and not Retraining.objects.exists()
    assert 'id="retrain-form"' in logged_in(admin_user).get(f"/projects/{project.pk}/models/")\
        .content.decode()  # fmt: skip

    drift = client_for(lead).get(f"/api/projects/{project.pk}/drift").json()
    assert drift["promoted"] == "rm-1-fruit-v1" and drift["warning"].startswith("The promoted")
    cell = drift["models"][0]["rounds"]["r2"]
    assert cell["accuracy"] == 0.7 and cell["n"] == 200
    assert client_for(annotator).get(f"/api/projects/{project.pk}/drift").status_code in (403, 404)
    project.drift_warning = 0.25
    project.save()
    assert client_for(lead).get(f"/api/projects/{project.pk}/drift").json()["warning"] is None
