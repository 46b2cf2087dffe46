"""The reward-model app's models, one module a concern; import them from here."""

from rewardmodels.models.jobs import Audit, EvaluationRun, FilterRun, Job, OnPairs
from rewardmodels.models.registry import Promotion, RewardModel
from rewardmodels.models.retraining import Retraining
from rewardmodels.models.training import TrainingRun, finite

__all__ = [
    "Audit", "EvaluationRun", "FilterRun", "Job", "OnPairs", "Promotion", "Retraining",
    "RewardModel", "TrainingRun", "finite",
]  # fmt: skip
