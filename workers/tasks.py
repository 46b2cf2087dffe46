"""Celery tasks. Each takes an id, loads its row, runs the work, and writes progress and
results back to the row: state lives in the database, not in the broker."""

import logging
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.celery import app
from workers.leases import Lease

logger = logging.getLogger(__name__)
LOG_LINES = 200


def run_folder(run_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / str(run_id)


@app.task(
    name="rewardmodels.train",
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker's run goes back to the queue and resumes
)
def train_reward_model(run_id: int) -> None:
    from rewardmodels.models import TrainingRun

    run = TrainingRun.objects.select_related("dataset").filter(pk=run_id).first()
    if run is None:
        return
    # Done already or held by another worker (a message sent twice does no harm), or
    # trained now: either way, a retraining waiting on the run moves on.
    lease = Lease(run.pk)
    if lease.take():
        try:
            if _count_delivery(run):
                _execute(run, lease)
        finally:
            lease.release()
    _advance_retraining(training_run=run.pk)


def _advance_retraining(*, training_run: int | None = None, evaluation=None) -> None:
    """A retraining waiting on this run or evaluation moves on (rewardmodels.retraining)."""
    from rewardmodels.models import Retraining
    from rewardmodels.retraining import retraining_advance

    if evaluation is not None:
        retraining_id = evaluation.retraining_id
    else:
        retraining_id = (
            Retraining.objects.filter(run_id=training_run).values_list("pk", flat=True).first()
        )
    if retraining_id is not None:
        retraining_advance(retraining_id)


def _count_delivery(run) -> bool:
    """Count this delivery of the run; False (and the run FAILED) when it has already been
    delivered TRAINING_MAX_DELIVERIES times without finishing.

    A delivery that finds the run unfinished means every earlier one lost its worker (an
    ended task records its outcome): a run killed each time, out of memory say, would
    otherwise come back forever and hold a gpu worker. The count is an F() update, so two
    workers handed the same message (a visibility timeout passing) both count."""
    from rewardmodels.models import TrainingRun

    TrainingRun.objects.filter(pk=run.pk).update(deliveries=F("deliveries") + 1)
    run.refresh_from_db(fields=["deliveries"])
    limit = settings.TRAINING_MAX_DELIVERIES
    if run.deliveries <= limit:
        return True
    error = (
        f"Gave up: the worker running it stopped {limit} time{'s' * (limit != 1)} without "
        "finishing (out of memory? try a smaller batch size or max length, or gradient "
        "checkpointing). TRAINING_MAX_DELIVERIES sets how many times a run is tried."
    )
    logger.error("training run %s: %s", run.pk, error)
    lines = [*run.log_tail.splitlines()[-(LOG_LINES - 1) :], f"{timezone.now():%H:%M:%S} {error}"]
    TrainingRun.objects.filter(pk=run.pk).exclude(
        status__in=(TrainingRun.Status.SUCCEEDED, TrainingRun.Status.CANCELLED)
    ).update(
        status=TrainingRun.Status.FAILED, error=error, log_tail="\n".join(lines),
        finished_at=timezone.now(),
    )  # fmt: skip
    return False


def _execute(run, lease: "Lease") -> None:
    import transformers

    from annotation.curation import dataset_rows
    from rewardmodels.models import RewardModel, TrainingRun
    from workers.ml import training
    from workers.ml.config import TrainConfig
    from workers.ml.models import model_card

    transformers.logging.set_verbosity_error()
    live = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
    started = (
        lease.mine()
        .filter(status__in=live)
        .update(
            status=TrainingRun.Status.RUNNING, started_at=run.started_at or timezone.now(), error=""
        )
    )
    if not started:
        return  # cancelled while it waited
    lines: list[str] = run.log_tail.splitlines()[-LOG_LINES:]
    last_write = [0.0]

    def log(line: str) -> None:
        lines.append(f"{timezone.now():%H:%M:%S} {line}")
        del lines[:-LOG_LINES]
        lease.mine().update(log_tail="\n".join(lines))

    def progress(step: int, total: int, metrics: dict) -> None:
        # A resumed run trains again the steps after its checkpoint: keep one entry a step.
        while run.metrics and run.metrics[-1].get("step", 0) >= step:
            run.metrics.pop()
        run.metrics.append(metrics)
        now = time.monotonic()
        if "eval" in metrics or step == total or now - last_write[0] > 2.0:
            last_write[0] = now
            lease.mine().update(
                step=step, total_steps=total, eta_seconds=metrics.get("eta_seconds"),
                metrics=run.metrics,
            )  # fmt: skip
        if "eval" in metrics:
            accuracy = metrics["eval"].get("accuracy") or 0.0
            if step == 0:  # the untrained model, measured before the first step
                log(f"untrained model: held-out accuracy {accuracy:.3f}")
            else:
                log(
                    f"step {step}/{total}: loss {metrics['loss']:.4f}, "
                    f"held-out accuracy {accuracy:.3f}"
                )

    def should_stop() -> bool:
        return lease.lost.is_set() or lease.mine().filter(cancel_requested=True).exists()

    config = TrainConfig(**run.train_settings())
    rows = dataset_rows(run.dataset)
    folder = run_folder(run.pk)
    try:
        final = training.train(
            config,
            [r for r in rows if r["split"] == "train"],
            [r for r in rows if r["split"] == "test"],
            folder,
            training.Reporter(progress=progress, log=log, should_stop=should_stop),
        )
    except training.Cancelled as exc:
        if lease.lost.is_set():
            return  # another worker has the run now: leave it every row
        log(str(exc))
        lease.mine().update(status=TrainingRun.Status.CANCELLED, finished_at=timezone.now())
        return
    except Exception as exc:  # noqa: BLE001 - recorded on the run for the UI
        logger.exception("training run %s failed", run.pk)
        lease.mine().update(
            status=TrainingRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            log_tail="\n".join([*lines, traceback.format_exc(limit=3)]),
            finished_at=timezone.now(),
        )
        return
    artifact = folder / "model"
    chosen = final["settings"]  # the method and learning rate, where "auto" left them open
    card = model_card(replace(config, **chosen), final, run.dataset.identifier, run.dataset.sha256)
    (artifact / "README.md").write_text(card)
    # Together: a worker lost between the two would leave a succeeded run, which is never
    # trained again, without its reward model.
    with transaction.atomic():
        finished = lease.mine().update(
            status=TrainingRun.Status.SUCCEEDED,
            method=chosen["method"],
            learning_rate=chosen["learning_rate"],
            final_metrics=final,
            artifact=str(artifact),
            finished_at=timezone.now(),
            step=F("total_steps"),
        )
        if not finished:
            return  # the lease was lost at the last moment: the new holder registers it
        RewardModel.objects.get_or_create(
            run=run,
            defaults={
                "identifier": f"rm-{run.pk}-{run.dataset.name}-v{run.dataset.version}",
                "project_id": run.dataset.project_id,
                "dataset": run.dataset,
                "base_model": run.base_model,
                "artifact": str(artifact),
            },
        )
    log(f"saved to {artifact}; held-out accuracy {final.get('accuracy', 0):.3f}")


@app.task(name="annotation.regrade", acks_late=True, reject_on_worker_lost=True)
def regrade(project_id: int) -> int:
    """Re-grade a project's labelled pairs after its difficulty rule changed (idempotent: a
    redelivered task grades them again by the rule as it is then)."""
    from annotation.project_setup import project_regrade

    return project_regrade(project_id=project_id)


SEARCH_INDEX_SECONDS = 60


@app.task(name="annotation.index_search")
def index_search() -> int:
    """Make new pairs searchable (annotation.services.pairs_search_index), a batch per
    transaction, for at most SEARCH_INDEX_SECONDS; what is left goes on in a new task, so a
    million imported pairs do not hold a worker. Imports send it on commit; beat sends it
    every minute for pairs made elsewhere. Returns how many pairs it indexed."""
    from annotation.services import pairs_search_index, search_index_soon

    done, deadline = 0, time.monotonic() + SEARCH_INDEX_SECONDS
    while time.monotonic() < deadline:
        indexed = pairs_search_index()
        done += indexed
        if not indexed:
            return done
    search_index_soon()
    return done


@app.task(name="rewardmodels.retrain_due")
def retrain_due() -> list[int]:
    """On Celery beat's schedule: move on retrainings under way (an event lost with a killed
    worker would otherwise leave one waiting) and start those the label count asks for.
    Returns the ids of the retrainings started."""
    from rewardmodels import retraining
    from rewardmodels.models import Retraining

    under_way = Retraining.objects.filter(status__in=retraining.UNDER_WAY)
    for retraining_id in under_way.values_list("pk", flat=True):
        retraining.retraining_advance(retraining_id)
    return [started.pk for started in retraining.retrain_due()]


# ---------------------------------------------------------------------------------------
# Using trained models: evaluation, filtering, scoring. Each loads its model through
# workers.ml.scoring.scorer_for, which keeps recently used models in the worker's memory.


def _job_progress(model, pk: int):
    """A progress callback that writes done/total to the job's row at most once a second."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] > 1.0 or done == total:
            last[0] = now
            model.objects.filter(pk=pk).update(done=done, total=total)

    return progress


def _fail(model, pk: int, exc: Exception) -> None:
    logger.exception("%s %s failed", model.__name__, pk)
    model.objects.filter(pk=pk).update(
        status=model.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
    )


@app.task(name="rewardmodels.evaluate", acks_late=True, reject_on_worker_lost=True)
def evaluate_reward_model(evaluation_id: int) -> None:
    from annotation.curation import dataset_rows
    from rewardmodels.formats import read_jsonl
    from rewardmodels.models import EvaluationRun
    from workers.ml import scoring

    evaluation = EvaluationRun.objects.select_related("reward_model", "dataset").filter(
        pk=evaluation_id
    )
    evaluation = evaluation.first()
    if evaluation is None or evaluation.finished:
        return
    EvaluationRun.objects.filter(pk=evaluation.pk).update(status=EvaluationRun.Status.RUNNING)
    try:
        if evaluation.dataset_id:
            rows = [r for r in dataset_rows(evaluation.dataset) if r["split"] == "test"]
        else:
            rows = read_jsonl(evaluation.pairs_file)
        scorer = scoring.scorer_for(evaluation.reward_model.artifact, exact=True)
        metrics = scoring.evaluate_pairs(scorer, rows, _job_progress(EvaluationRun, evaluation.pk))
    except Exception as exc:  # noqa: BLE001 - recorded on the row for the UI
        _fail(EvaluationRun, evaluation.pk, exc)
    else:
        EvaluationRun.objects.filter(pk=evaluation.pk).update(
            status=EvaluationRun.Status.SUCCEEDED, metrics=metrics, finished_at=timezone.now()
        )
    _advance_retraining(evaluation=evaluation)


@app.task(name="rewardmodels.filter", acks_late=True, reject_on_worker_lost=True)
def filter_candidates(filter_id: int) -> None:
    from rewardmodels.formats import read_jsonl, write_jsonl
    from rewardmodels.models import FilterRun
    from workers.ml import scoring
    from workers.ml.selection import filter_rows

    job = FilterRun.objects.select_related("reward_model").filter(pk=filter_id).first()
    if job is None or job.finished:
        return
    FilterRun.objects.filter(pk=job.pk).update(status=FilterRun.Status.RUNNING)
    try:
        rows = read_jsonl(job.candidates_file)
        scorer = scoring.scorer_for(job.reward_model.artifact)
        rewards, tokens = scorer.score(
            [r["prompt"] for r in rows], [r["response"] for r in rows],
            _job_progress(FilterRun, job.pk),
        )  # fmt: skip
        kept = filter_rows(rows, rewards, tokens, job.keep_top, job.threshold,
                           job.normalize, scorer.reward_per_token)  # fmt: skip
        output = job.output_path()
        write_jsonl(output, kept)
    except Exception as exc:  # noqa: BLE001 - recorded on the row for the UI
        _fail(FilterRun, job.pk, exc)
        return
    FilterRun.objects.filter(pk=job.pk).update(
        status=FilterRun.Status.SUCCEEDED, n_kept=len(kept), output_file=str(output),
        finished_at=timezone.now(),
    )  # fmt: skip


@app.task(name="rewardmodels.score", ignore_result=False)
def score_responses(
    model_path: str, prompts: list, responses: list[str], normalize: str | None = None
) -> dict:
    """Rewards and response lengths for the API, with the model's fitted reward per token
    (None when its training did not record one). With `normalize` ("none" or "length") the
    responses are also ranked, best first (workers.ml.selection.rank). The caller waits."""
    from workers.ml import scoring
    from workers.ml.selection import rank

    scorer = scoring.scorer_for(model_path)
    rewards, tokens = scorer.score(prompts, responses)
    result = {
        "rewards": rewards.tolist(),
        "tokens": tokens.tolist(),
        "reward_per_token": scorer.reward_per_token,
    }
    if normalize is not None:
        result["ranked"] = rank(rewards, tokens, normalize, scorer.reward_per_token)
    return result


@app.task(name="rewardmodels.score_candidates", acks_late=True, ignore_result=False)
def score_candidates(round_id: int, model_key: str, model_path: str) -> int:
    """Rewards from one model for a round's candidates that have none from it yet, stored
    under the model's identifier (Candidate.scores). Returns how many were scored."""
    from annotation.models import Candidate
    from workers.ml import scoring

    todo = [c for c in Candidate.objects.filter(round_id=round_id) if model_key not in c.scores]
    if not todo:
        return 0
    scorer = scoring.scorer_for(model_path)
    rewards, _ = scorer.score([c.prompt for c in todo], [c.response for c in todo])
    for candidate, reward in zip(todo, rewards.tolist(), strict=True):
        candidate.scores = {**candidate.scores, model_key: reward}
    Candidate.objects.bulk_update(todo, ["scores"], batch_size=1000)
    return len(todo)


# ---------------------------------------------------------------------------------------
# LLM judges, on the default queue: requests go out from here, labels come back as rows.

JUDGE_FLUSH_SECONDS = 0.5  # finished pairs are written at least this often ...
JUDGE_FLUSH_PAIRS = 200  # ... or every this many, whichever comes first


def _endpoint(judge):
    from annotation.judges import judge_api_key
    from workers.llm import Endpoint

    return Endpoint(
        provider=judge.provider, base_url=judge.base_url, model=judge.model,
        api_key=judge_api_key(judge), temperature=judge.temperature,
        max_tokens=judge.max_tokens, timeout=judge.timeout_seconds,
    )  # fmt: skip


@app.task(name="annotation.judge", acks_late=True, reject_on_worker_lost=True)
def judge_pairs(job_id: int) -> None:
    """Judge a job's pairs, both orders each, writing labels as pairs finish. A killed
    worker's job comes back and judges only what has no label from its judge yet."""
    from annotation import judges
    from annotation.judging import parse_verdict
    from annotation.models import JudgingJob
    from workers.llm import judge_all

    job = JudgingJob.objects.select_related("judge", "project").filter(pk=job_id).first()
    if job is None or job.finished:
        return
    JudgingJob.objects.filter(pk=job.pk).update(
        status=JudgingJob.Status.RUNNING, started_at=job.started_at or timezone.now()
    )
    try:
        endpoint = _endpoint(job.judge)
        pairs = judges.pair_texts(judges.job_pair_ids(job))
        items = [(pair["id"], judges.judge_requests(job.project, pair)) for pair in pairs]
    except Exception as exc:  # noqa: BLE001 - recorded on the row for the UI
        _fail(JudgingJob, job.pk, exc)
        return
    cancelled = threading.Event()
    pending, last = [], time.monotonic()
    outcomes = judge_all(
        endpoint, items, parse_verdict, concurrency=job.judge.concurrency,
        per_minute=job.judge.requests_per_minute, stop=cancelled,
    )  # fmt: skip
    for outcome in outcomes:
        pending.append(outcome)
        now = time.monotonic()
        if len(pending) >= JUDGE_FLUSH_PAIRS or now - last >= JUDGE_FLUSH_SECONDS:
            judges.judged_write(job=job, outcomes=pending, seconds=now - last)
            pending, last = [], now
            if JudgingJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
                cancelled.set()  # the requests in flight finish; no new ones start
    stopped = JudgingJob.objects.filter(pk=job.pk, cancel_requested=True).exists()
    judges.judged_write(job=job, outcomes=pending, seconds=time.monotonic() - last)
    JudgingJob.objects.filter(pk=job.pk).update(
        status=JudgingJob.Status.CANCELLED if stopped else JudgingJob.Status.SUCCEEDED,
        finished_at=timezone.now(),
    )


@app.task(name="annotation.judge_ask", ignore_result=False)
def judge_ask(judge_id: int, text: str) -> dict:
    """One request to a judge, for the template preview: its raw answer and what it parses
    to (or why it does not). The caller waits."""
    import asyncio

    from annotation.judging import MalformedAnswer, parse_verdict
    from annotation.models import Judge
    from workers.llm import RequestFailed, asker

    judge = Judge.objects.get(pk=judge_id)

    async def once():
        ask = asker(_endpoint(judge))
        try:
            return await ask(text)
        finally:
            await ask.close()

    try:
        reply = asyncio.run(once())
    except (RequestFailed, ValueError) as exc:
        return {"text": "", "error": str(exc)}
    answer = {"text": reply.text, "input_tokens": reply.input_tokens,
              "output_tokens": reply.output_tokens}  # fmt: skip
    try:
        verdict = parse_verdict(reply.text)
    except MalformedAnswer as exc:
        return {**answer, "error": f"malformed answer: {exc}"}
    return {**answer, "verdict": {"winner": verdict.winner, "strength": verdict.strength,
                                  "reasoning": verdict.reasoning}}  # fmt: skip
