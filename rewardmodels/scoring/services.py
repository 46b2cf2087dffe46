"""Using a model: filters of candidate files as jobs, and scoring and best-of-N answered
while the request waits (a bounded time)."""

from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.jobs import job_send
from config.celery import (
    RETRY_AFTER_SECONDS,
    BrokerUnavailable,
    NoAnswer,
    answer_of,
    enqueue,
    queue_for,
)
from rewardmodels.formats import read_candidates, upload_path, write_jsonl
from rewardmodels.models import (
    FilterRun,
    RewardModel,
)

FILTER_TASK = "rewardmodels.filter"
SCORE_TASK = "rewardmodels.score"
MAX_SCORE_ITEMS = 256
MAX_SCORE_CHARS = 20_000
# A worker from before ranking moved to the worker answers rewards without "ranked".
OLDER_WORKER = "The scoring worker runs an older version; restart it to rank candidates."


def filter_create(
    *,
    reward_model: RewardModel,
    user: AbstractBaseUser | None,
    upload,
    keep_top: float | None = 0.25,
    threshold: float | None = None,
    normalize: str = "none",
    fmt: str = "auto",
) -> FilterRun:
    """Queue scoring a candidates file and keeping the best per prompt, by reward or (with
    normalize="length") by reward with the model's length trend removed."""
    if keep_top is None and threshold is None:
        raise ValidationError("Keep a top share per prompt, or those above a threshold.")
    job = FilterRun(
        reward_model=reward_model, created_by=user, keep_top=keep_top, threshold=threshold,
        normalize=normalize, upload_name=upload.name[:255],
    )  # fmt: skip
    job.full_clean(exclude=["reward_model", "created_by", "candidates_file"])
    rows = read_candidates(upload, upload.name, fmt)
    job.candidates_file = str(upload_path("candidates"))
    job.total = len(rows)
    job.n_prompts = len({r["group"] for r in rows})
    write_jsonl(Path(job.candidates_file), rows)
    with transaction.atomic():
        job.save()
        transaction.on_commit(lambda: job_send(FilterRun, job.pk, FILTER_TASK))
    return job


SCORE_CANDIDATES_TASK = "rewardmodels.score_candidates"
SCORE_CANDIDATES_TIMEOUT_SECONDS = 3600


def candidates_score(*, round_, reward_model: RewardModel) -> int:
    """Have a worker on the scoring queue give the round's candidates their rewards from
    this model (those it has scored already are kept); waits, returns how many it scored."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    try:
        result = enqueue(SCORE_CANDIDATES_TASK, round_.pk, reward_model.identifier,
                         reward_model.artifact)  # fmt: skip
    except BrokerUnavailable as exc:
        raise WorkerUnavailable(f"Cannot score the candidates now: {exc}.") from exc
    try:
        return result.get(timeout=SCORE_CANDIDATES_TIMEOUT_SECONDS, propagate=True)
    except CeleryTimeout as exc:
        raise WorkerUnavailable(
            f"No worker scored the candidates within {SCORE_CANDIDATES_TIMEOUT_SECONDS} s; is "
            f"a worker serving the {queue_for(SCORE_CANDIDATES_TASK)} queue?"
        ) from exc
    finally:
        if result.ready():
            result.forget()


def failure_detail(exc: Exception) -> str:
    """What to tell the person when the worker raised instead of answering."""
    return f"Scoring failed on the worker: {type(exc).__name__}: {exc}"


class WorkerUnavailable(Exception):
    """No worker answered in time; `retry_after`: seconds worth waiting before trying again."""

    def __init__(self, message: str, *, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(message)
        self.retry_after = retry_after


def score(
    *, reward_model: RewardModel, prompts: list, responses: list[str], rank: str | None = None
) -> dict:
    """Rewards, response lengths in tokens and the model's reward per token (None when its
    training did not record it) from a worker on the interactive queue, which keeps the
    model loaded between calls; with `rank` ("none" or "length"), also the responses best
    first under "ranked". Raises WorkerUnavailable if none answers within
    INTERACTIVE_WAIT_SECONDS."""
    try:
        return answer_of(SCORE_TASK, reward_model.artifact, prompts, responses, rank)
    except BrokerUnavailable as exc:
        raise WorkerUnavailable(f"Cannot score now: {exc}.") from exc
    except NoAnswer as exc:
        if exc.served:
            why = (
                f"the workers on the {exc.queue} queue are busy (or loading the model, which "
                "stays loaded for the next try); try again shortly"
            )
        else:
            why = (
                f"no worker is serving the {exc.queue} queue (`celery -A workers worker -Q "
                f"{exc.queue} -c 1` on each scoring machine; make run starts one)"
            )
        raise WorkerUnavailable(
            f"No worker scored the request within {exc.seconds:g} s: {why}.",
            retry_after=exc.retry_after,
        ) from exc
