"""Drift: how a project's models do on each round's fresh held-out set. Policies move away
from the data a reward model was trained on; a model's accuracy on the newest round,
against its accuracy on its own test split, shows whether it still judges the new outputs
well. Reads only; the evaluations are queued by retraining and by drift_evaluate."""

from dataclasses import dataclass, field

from django.db.models import Count, Q

from annotation.models import Project, Round
from rewardmodels.access import promoted_model
from rewardmodels.models import EvaluationRun, RewardModel
from rewardmodels.training.held_out import accuracy_interval


@dataclass
class DriftCell:
    """One model on one round: its newest finished evaluation there (or one under way)."""

    evaluation: EvaluationRun | None = None
    pending: EvaluationRun | None = None

    @property
    def accuracy(self) -> float | None:
        return self.evaluation.metrics.get("accuracy") if self.evaluation else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return accuracy_interval(self.evaluation.metrics) if self.evaluation else None

    @property
    def n(self) -> int | None:
        return self.evaluation.metrics.get("n") if self.evaluation else None


@dataclass
class DriftRow:
    reward_model: RewardModel
    promoted: bool
    cells: list[DriftCell] = field(default_factory=list)


@dataclass
class Drift:
    project: Project
    rounds: list[Round]
    rows: list[DriftRow]
    promoted: RewardModel | None
    warning: str | None

    def as_json(self) -> dict:
        """The matrix as the API and `manage.py drift --json` give it."""
        return {
            "project": {"id": self.project.pk, "name": self.project.name},
            "rounds": [
                {
                    "name": r.name,
                    "policy": r.policy,
                    "created_at": r.created_at.isoformat(),
                    "held_out_pairs": r.held_out_pairs,
                    "held_out_labelled": r.held_out_labelled,
                }
                for r in self.rounds
            ],  # fmt: skip
            "promoted": self.promoted.identifier if self.promoted else None,
            "warning": self.warning,
            "models": [
                {
                    "identifier": row.reward_model.identifier,
                    "promoted": row.promoted,
                    "registered": row.reward_model.registered,
                    "test_accuracy": row.reward_model.test_accuracy,
                    "rounds": {
                        round_.name: (
                            {
                                "accuracy": cell.accuracy,
                                "accuracy_ci95": cell.interval,
                                "n": cell.n,
                                "evaluation": cell.evaluation.pk,
                            }
                            if cell.evaluation
                            else None
                        )  # fmt: skip
                        for round_, cell in zip(self.rounds, row.cells, strict=True)
                    },
                }
                for row in self.rows
            ],
        }


def project_drift(*, project: Project) -> Drift:
    """Models (oldest first) by rounds (in order), each cell the newest succeeded evaluation
    of the model on the round's held-out set; a warning when the promoted model's accuracy
    on the newest round is below its own test accuracy by more than the project allows."""
    rounds = list(
        project.rounds.order_by("created_at").annotate(
            held_out_pairs=Count("pairs", filter=Q(pairs__held_out=True), distinct=True),
            held_out_labelled=Count(
                "pairs", filter=Q(pairs__held_out=True, pairs__labels__isnull=False),
                distinct=True,
            ),
        )
    )  # fmt: skip
    models = list(
        RewardModel.objects.filter(project=project)
        .select_related("run")
        .defer("run__metrics", "run__log_tail")
        .order_by("created_at", "pk")
    )
    done: dict[tuple[int, int], EvaluationRun] = {}
    pending: dict[tuple[int, int], EvaluationRun] = {}
    evaluations = EvaluationRun.objects.filter(round__project=project).order_by("created_at", "pk")
    for evaluation in evaluations:
        key = (evaluation.reward_model_id, evaluation.round_id)
        if evaluation.status == EvaluationRun.Status.SUCCEEDED:
            done[key] = evaluation
        elif not evaluation.finished:
            pending[key] = evaluation
    promoted = promoted_model(project_id=project.pk)
    rows = [
        DriftRow(
            reward_model=m,
            promoted=promoted is not None and m.pk == promoted.pk,
            cells=[DriftCell(done.get((m.pk, r.pk)), pending.get((m.pk, r.pk))) for r in rounds],
        )
        for m in models
    ]
    return Drift(project, rounds, rows, promoted, _warning(project, rounds, rows))


def _warning(project: Project, rounds: list[Round], rows: list[DriftRow]) -> str | None:
    row = next((row for row in rows if row.promoted), None)
    if row is None or not rounds:
        return None
    newest, cell = rounds[-1], row.cells[-1]
    own = row.reward_model.test_accuracy
    if cell.accuracy is None or own is None:
        return None
    drop = own - cell.accuracy
    if drop <= project.drift_warning:
        return None
    return (
        f"The promoted model {row.reward_model.identifier} scores {cell.accuracy:.1%} on round "
        f"{newest.name}'s held-out set against {own:.1%} on its own test split, "
        f"{100 * drop:.1f} points lower (the project warns beyond "
        f"{100 * project.drift_warning:.1f} points): collect "
        "labels on the new outputs and retrain."
    )
