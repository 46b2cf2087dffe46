"""The sweep that resends every job a broker lost: training runs, judging jobs, evaluations,
filters and audits."""

from annotation.jobs import jobs_recover
from annotation.judges.services import JUDGE_TASK
from annotation.models import JudgingJob
from rewardmodels.evaluation.audits import AUDIT_TASK
from rewardmodels.evaluation.services import EVALUATE_TASK
from rewardmodels.models import (
    Audit,
    EvaluationRun,
    FilterRun,
)
from rewardmodels.scoring.services import FILTER_TASK


def jobs_recover_all() -> list[tuple[str, int]]:
    """Send every judging job, evaluation, filter and audit that was queued while the broker
    was down (annotation.jobs.jobs_recover); returns (kind, id) for each sent."""
    sent = []
    for model, task in ((JudgingJob, JUDGE_TASK), (EvaluationRun, EVALUATE_TASK),
                        (FilterRun, FILTER_TASK), (Audit, AUDIT_TASK)):  # fmt: skip
        sent += [(model.__name__, pk) for pk in jobs_recover(model, task)]
    return sent
