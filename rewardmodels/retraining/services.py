"""The retraining loop: a new version of a dataset (every round's new labels, held-out pairs
excluded) trained on from a model's weights or the base model; then the new model and the
promoted one evaluated on every round's fresh held-out set, and the new one promoted unless
it is worse on the newest round by more than the project's tolerance.

A retraining moves on by events, not by a task that waits: the training task calls
retraining_advance when its run ends, and each evaluation task when it ends. The state is
the Retraining row, locked while it moves, so two evaluations ending together decide once."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.curation.selection import CurationFilters
from annotation.curation.services import dataset_curate
from annotation.models import CuratedDataset, Label, Project
from rewardmodels.access import promoted_model
from rewardmodels.evaluation.audits import audit_check, audit_create, audit_summary
from rewardmodels.evaluation.drift import project_drift
from rewardmodels.evaluation.services import evaluation_create, round_evaluations_create
from rewardmodels.models import Audit, EvaluationRun, Retraining, RewardModel, TrainingRun
from rewardmodels.registry.services import model_promote
from rewardmodels.training.held_out import accuracy_interval
from rewardmodels.training.services import training_run_create

UNDER_WAY = (Retraining.Status.TRAINING, Retraining.Status.EVALUATING)


def retraining_start(
    *,
    project: Project,
    dataset_name: str,
    start_from: RewardModel | None,
    user: AbstractBaseUser | None,
    automatic: bool = False,
) -> Retraining:
    """Curate the next version of `dataset_name` with its last version's filters and queue a
    run on it, with the settings of the run that trained `start_from` (or of the last run on
    the dataset), from `start_from`'s weights or, with None, from the base model."""
    last = (
        CuratedDataset.objects.filter(project=project, name=dataset_name)
        .order_by("-version")
        .first()
    )
    if last is None:
        raise ValidationError(
            f"{project} has no dataset named {dataset_name!r}: curate a first version."
        )
    if start_from is not None and start_from.project_id != project.pk:
        raise ValidationError(f"{start_from} is not a model of {project}.")
    template = _settings_from(project, dataset_name, start_from)
    options = {name: getattr(template, name) for name in TrainingRun.SETTINGS} if template else {}
    if start_from is not None and start_from.registered:
        options["base_model"] = start_from.base_model
    with transaction.atomic():
        under_way = Retraining.objects.select_for_update().filter(
            project=project, status__in=UNDER_WAY
        )
        if under_way.exists():
            raise ValidationError(
                f"Retraining {under_way[0].pk} of {project} is under way; wait for its decision."
            )
        dataset = dataset_curate(
            project=project, name=dataset_name, filters=CurationFilters(**last.filters), user=user
        )
        run = training_run_create(dataset=dataset, user=user, start_from=start_from, **options)
        return Retraining.objects.create(
            project=project, run=run, previous=promoted_model(project_id=project.pk),
            created_by=user, automatic=automatic,
        )  # fmt: skip


def _settings_from(project, dataset_name: str, start_from: RewardModel | None):
    """The run whose settings a retraining repeats: the one that trained the model it starts
    from, else the newest succeeded run on the dataset; None: the defaults."""
    if start_from is not None and start_from.run_id:
        return start_from.run
    return (
        TrainingRun.objects.filter(
            dataset__project=project, dataset__name=dataset_name,
            status=TrainingRun.Status.SUCCEEDED,
        )
        .order_by("-created_at")
        .first()
    )  # fmt: skip


def retraining_advance(retraining_id: int) -> None:
    """Move a retraining on as far as its run and evaluations allow: after training, queue
    the evaluations; once they have all ended, decide. Safe to call at any time."""
    with transaction.atomic():
        retraining = (
            Retraining.objects.select_for_update(of=("self",))
            .select_related("run", "previous", "project")
            .filter(pk=retraining_id)
            .first()
        )
        if retraining is None or retraining.finished:
            return
        if retraining.status == Retraining.Status.TRAINING:
            run = retraining.run
            if run.status in (TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED):
                _fail(retraining, f"Training run {run.pk} {run.get_status_display().lower()}.")
                return
            if run.status != TrainingRun.Status.SUCCEEDED:
                return
            try:
                _queue_evaluations(retraining, RewardModel.objects.get(run=run))
            except ValidationError as exc:  # the new model cannot be audited (its files?)
                _fail(retraining, f"Not evaluated: {' '.join(exc.messages)}")
                return
        evaluations = list(retraining.evaluations.select_related("round", "reward_model"))
        audits = list(retraining.audits.all())
        if any(not job.finished for job in evaluations + audits):
            return
        failed = [e for e in evaluations if e.status == EvaluationRun.Status.FAILED]
        if failed:
            _fail(retraining, f"Evaluation {failed[0].pk} failed: {failed[0].error}")
            return
        failed = [a for a in audits if a.status == Audit.Status.FAILED]
        if failed:
            _fail(retraining, f"Audit {failed[0].pk} failed: {failed[0].error}")
            return
        _decide(retraining, evaluations)


def _queue_evaluations(retraining: Retraining, new: RewardModel) -> None:
    """The new and the promoted model on every round's fresh held-out set (rounds with no
    labelled held-out pair yet are passed over). With no such round, the promoted model
    on the new version's test split, where the new model's metrics are its run's."""
    models = [new] + ([retraining.previous] if retraining.previous else [])
    queued = 0
    for round_ in retraining.project.rounds.order_by("created_at"):
        try:
            queued += len(
                round_evaluations_create(
                    round_=round_, reward_models=models, user=retraining.created_by,
                    retraining=retraining,
                )
            )  # fmt: skip
        except ValidationError:
            continue  # no labelled held-out pairs in this round
        audit_create(reward_model=new, user=retraining.created_by, round_=round_,
                     retraining=retraining)  # fmt: skip
    if not queued:
        audit_create(reward_model=new, user=retraining.created_by,
                     dataset=retraining.run.dataset, retraining=retraining)  # fmt: skip
    if not queued and retraining.previous:
        evaluation_create(
            reward_model=retraining.previous, user=retraining.created_by,
            dataset=retraining.run.dataset, retraining=retraining,
        )  # fmt: skip
    retraining.status = Retraining.Status.EVALUATING
    retraining.save(update_fields=["status"])


def _accuracy_of(metrics: dict) -> dict:
    interval = accuracy_interval(metrics)
    return {"accuracy": metrics.get("accuracy"), "accuracy_ci95": interval, "n": metrics.get("n")}


def _decide(retraining: Retraining, evaluations: list[EvaluationRun]) -> None:
    """Promote the new model unless, on the newest round evaluated (else the new version's
    test split), its accuracy is below the promoted model's by more than the tolerance."""
    new = RewardModel.objects.get(run=retraining.run)
    previous = retraining.previous
    tolerance = retraining.project.promotion_tolerance
    rounds: dict[str, dict] = {}
    for evaluation in sorted(evaluations, key=lambda e: (e.round_id or 0, e.pk)):
        if evaluation.round_id:
            rounds.setdefault(evaluation.round.name, {})[evaluation.reward_model.identifier] = (
                _accuracy_of(evaluation.metrics)
            )
    if rounds:
        basis = f"round {list(rounds)[-1]}'s held-out set"
        metrics = rounds[list(rounds)[-1]]
    else:
        basis = f"{retraining.run.dataset.identifier}'s test split"
        metrics = {new.identifier: _accuracy_of(retraining.run.final_metrics)}
        metrics.update(
            {
                e.reward_model.identifier: _accuracy_of(e.metrics)
                for e in evaluations
                if e.dataset_id
            }
        )
    new_accuracy = metrics[new.identifier]["accuracy"]
    if previous is None:
        promote, reason = True, "No model was promoted in the project."
    else:
        old_accuracy = metrics[previous.identifier]["accuracy"]
        promote = new_accuracy >= old_accuracy - tolerance
        verdict = (
            "not worse by more than the tolerance"
            if promote
            else f"worse by more than the tolerance, so {previous.identifier} stays promoted"
        )
        reason = (
            f"On {basis}: {new_accuracy:.1%} for {new.identifier} against {old_accuracy:.1%} "
            f"for {previous.identifier}, {verdict} ({tolerance:.1%})."
        )
    audits = list(retraining.audits.select_related("reward_model__project", "reward_model__run"))
    held_back = [reason for audit in audits for reason in audit_check(audit)]
    if promote and held_back:
        promote = False
        reason += f" Its audit holds it back: {'; '.join(held_back)}."
    retraining.decision = {
        "basis": basis, "tolerance": tolerance, "new": new.identifier,
        "previous": previous.identifier if previous else None, "metrics": metrics,
        "rounds": rounds, "reason": reason, "held_back": held_back,
        "audits": [audit_summary(audit) for audit in audits],
    }  # fmt: skip
    retraining.promoted = promote
    retraining.status = Retraining.Status.DECIDED
    retraining.finished_at = timezone.now()
    retraining.save(update_fields=["decision", "promoted", "status", "finished_at"])
    if promote:
        model_promote(
            reward_model=new, user=retraining.created_by,
            reason=f"Retraining {retraining.pk}. {reason}",
        )  # fmt: skip


def _fail(retraining: Retraining, error: str) -> None:
    retraining.status = Retraining.Status.FAILED
    retraining.error = error
    retraining.finished_at = timezone.now()
    retraining.save(update_fields=["status", "error", "finished_at"])


def drift_evaluate(*, project: Project, user: AbstractBaseUser | None, again: bool = False) -> int:
    """Queue the evaluations the drift matrix lacks: every model of the project on every
    round with labelled held-out pairs; with `again`, every cell anew (its held-out set has
    grown since). A cell with an evaluation under way is left alone. Returns how many."""
    drift = project_drift(project=project)
    queued = 0
    for k, round_ in enumerate(drift.rounds):
        wanted = [
            row.reward_model
            for row in drift.rows
            if not row.cells[k].pending and (again or not row.cells[k].evaluation)
        ]
        if not wanted:
            continue
        try:
            queued += len(round_evaluations_create(round_=round_, reward_models=wanted, user=user))
        except ValidationError:
            continue  # no labelled held-out pairs in this round yet
    return queued


# ---------------------------------------------------------------------------------------
# Retraining by the label count (Celery beat runs retrain_due every few minutes)


def labels_since_last_version(project: Project) -> int:
    """Labels given in the project since its retrain dataset's last version was cut."""
    last = (
        CuratedDataset.objects.filter(project=project, name=project.retrain_dataset)
        .order_by("-version")
        .first()
    )
    labels = Label.objects.filter(pair__project=project, pair__held_out=False)
    return labels.filter(created_at__gt=last.created_at).count() if last else 0


def retrain_due() -> list[Retraining]:
    """Start a retraining, from the promoted model, in each project whose setting asks for
    one and that has had enough new labels since its dataset's last version; a project with
    a retraining under way waits for it."""
    started = []
    projects = Project.objects.filter(retrain_after_labels__isnull=False).exclude(
        retrain_dataset=""
    )
    for project in projects:
        if project.retrainings.filter(status__in=UNDER_WAY).exists():
            continue
        if labels_since_last_version(project) < project.retrain_after_labels:
            continue
        try:
            started.append(
                retraining_start(
                    project=project, dataset_name=project.retrain_dataset,
                    start_from=promoted_model(project_id=project.pk), user=None, automatic=True,
                )
            )  # fmt: skip
        except ValidationError:
            continue  # the dataset is gone or the filters keep nothing: try again later
    return started
