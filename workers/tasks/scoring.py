"""Using trained models on the scoring queue: evaluation, filtering, scoring."""

import shutil
import uuid
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import F

from annotation.jobs import job_fail, job_start, job_succeed
from config.celery import app, current_message
from workers.tasks.jobs import fails_its_job
from workers.tasks.training import advance_retraining

# Evaluations and filters are scored in parts (chunks of SCORING_CHUNK_ROWS rows): a Celery
# group of score_chunk tasks, one per part, that every worker on the scoring queue takes
# from, then gather_scores (the chord's callback) joins the parts in order and finishes the
# job. Each part's input and scores are files in the job's folder, so a part scored once is
# never scored again: a redelivered or retried part, or a job sent twice, redoes only what
# has no scores yet; a part whose worker dies SCORING_MAX_DELIVERIES times in the middle
# fails the job. Each task loads its model through workers.ml.scoring.scorer_for, which
# keeps recently used models in the worker's memory.

CHUNK_RETRIES = 2  # a part that fails is tried again this many times, alone


def _job_model(kind: str):
    from rewardmodels.models import Audit, EvaluationRun, FilterRun

    return {"evaluation": EvaluationRun, "filter": FilterRun, "audit": Audit}[kind]


def _parts_folder(kind: str, pk: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "scoring" / f"{kind}-{pk}"


def _scores(kind: str, pk: int, index: int) -> Path:
    return _parts_folder(kind, pk) / f"{index:05d}.npz"


def responses_per_row(kind: str, pk: int) -> int:
    """Responses scored per row: an evaluation's rows are pairs, an audit's pairs with an
    edited rejected response for each probe."""
    if kind == "audit":
        return 2 + len(_job_model(kind).objects.values_list("probes", flat=True).get(pk=pk))
    return {"evaluation": 2, "filter": 1}[kind]


def _lost_starts(mark: Path) -> int:
    """Mark the part as being scored; returns how many earlier starts left their mark (their
    worker died in the middle: a start that ends, well or not, removes it)."""
    lost = int(mark.read_text() or 0) + 1 if mark.exists() else 0
    mark.write_text(str(lost))
    return lost


def _give_up(kind: str, pk: int, exc: Exception) -> None:
    """A job that cannot finish: failed with the reason, its parts removed, and a retraining
    waiting on an evaluation or audit moved on."""
    job_fail(_job_model(kind), pk, exc)
    shutil.rmtree(_parts_folder(kind, pk), ignore_errors=True)
    if kind in ("evaluation", "audit"):
        advance_retraining(job=_job_model(kind).objects.get(pk=pk))


def _scatter(kind: str, pk: int, rows: list[dict]) -> None:
    """Write the job's rows in parts and send one score_chunk task per part, with
    gather_scores to run when all are scored."""
    from celery import chord

    from rewardmodels.formats import write_jsonl

    folder = _parts_folder(kind, pk)
    size = max(1, settings.SCORING_CHUNK_ROWS)
    parts = [rows[start : start + size] for start in range(0, len(rows), size)] or [[]]
    for index, part in enumerate(parts):
        write_jsonl(folder / f"{index:05d}.jsonl", part)
    # Sent again (its worker died after sending), parts scored already keep their count.
    scored = sum(len(part) for index, part in enumerate(parts) if _scores(kind, pk, index).exists())
    per_row = responses_per_row(kind, pk)
    _job_model(kind).objects.filter(pk=pk).update(done=scored * per_row, total=len(rows) * per_row)
    chord(score_chunk.s(kind, pk, index) for index in range(len(parts)))(gather_scores.s(kind, pk))


@app.task(name="rewardmodels.evaluate", acks_late=True, reject_on_worker_lost=True)
@fails_its_job("rewardmodels.EvaluationRun")
def evaluate_reward_model(evaluation_id: int) -> None:
    _score_pairs("evaluation", evaluation_id)


@app.task(name="rewardmodels.audit", acks_late=True, reject_on_worker_lost=True)
@fails_its_job("rewardmodels.Audit")
def audit_reward_model(audit_id: int) -> None:
    _score_pairs("audit", audit_id)


def _score_pairs(kind: str, pk: int) -> None:
    """Start an evaluation or audit: its pairs (a version's test split, or its file of
    pairs) written in parts and sent to be scored."""
    from annotation.curation.selectors import dataset_rows
    from rewardmodels.formats import read_jsonl

    model = _job_model(kind)
    if not job_start(model, pk, current_message()):
        return  # finished already: a message delivered twice does no harm
    job = model.objects.select_related("dataset").get(pk=pk)
    try:
        if job.dataset_id:
            rows = [r for r in dataset_rows(job.dataset) if r["split"] == "test"]
        else:
            rows = read_jsonl(job.pairs_file)
        _scatter(kind, pk, rows)
    except Exception as exc:  # noqa: BLE001 - recorded on the row for the UI
        _give_up(kind, pk, exc)


def _audit_results(job, rows: list[dict], scores: dict) -> dict:
    """An audit's figures, and its edited pairs written to their file."""
    from rewardmodels.formats import write_jsonl
    from workers.ml import probes

    output = job.edited_path()
    write_jsonl(output, probes.edited_rows(rows, scores, job.probes))
    return {"results": probes.audit_figures(rows, scores, job.probes), "edited_file": str(output)}


def _evaluation_results(job, rows: list[dict], scores: dict) -> dict:
    """An evaluation's figures, and each pair's result written to its file: the wrong pairs
    first, most confident mistake first (the rejected response's reward furthest above the
    chosen one's), each with the start of its prompt and responses for the page, then the
    right ones in the pairs' order. A pair of a dataset version or round is named by its
    Pair's number (None when it is gone from the project)."""
    from rewardmodels.formats import write_jsonl
    from workers.ml import scoring

    results = scoring.pair_results(rows, scores)
    project = job.dataset.project_id if job.dataset_id else None
    if job.round_id:
        project = job.round.project_id
    if project is not None:
        numbers = _pair_numbers(project, [str(r["pair_id"]) for r in results])
        for result in results:
            result["pair_id"] = numbers.get(str(result["pair_id"]))
    wrong = sorted((r for r in results if not r["right"]), key=lambda r: (r["gap"], r["index"]))
    for result in wrong:
        result.update(_starts(rows[result["index"]]))
    output = job.pair_results_path()
    write_jsonl(output, wrong + [r for r in results if r["right"]])
    return {"metrics": scoring.pair_metrics(rows, scores), "pair_results_file": str(output)}


def _pair_numbers(project_id: int, external_ids: list[str]) -> dict[str, int]:
    """The Pair number of each of these ids in the project (curated rows carry the ids)."""
    from annotation.models import Pair

    numbers, step = {}, 5000
    for start in range(0, len(external_ids), step):
        found = Pair.objects.filter(
            project_id=project_id, external_id__in=external_ids[start : start + step]
        )
        numbers.update(found.values_list("external_id", "pk"))
    return numbers


def _starts(row: dict) -> dict:
    """The start of a pair's question and of its two responses, as text (shown escaped)."""
    from annotation.rendering import PREVIEW_CHARS
    from workers.ml.encoding import response_text
    from workers.ml.probes import last_user_text

    def start(text: str) -> str:
        return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS].rstrip() + " …"

    return {
        "prompt_start": start(last_user_text(row["prompt"])),
        "chosen_start": start(response_text(row["chosen"])),
        "rejected_start": start(response_text(row["rejected"])),
    }


@app.task(name="rewardmodels.filter", acks_late=True, reject_on_worker_lost=True)
@fails_its_job("rewardmodels.FilterRun")
def filter_candidates(filter_id: int) -> None:
    from rewardmodels.formats import read_jsonl
    from rewardmodels.models import FilterRun

    if not job_start(FilterRun, filter_id, current_message()):
        return
    job = FilterRun.objects.get(pk=filter_id)
    try:
        _scatter("filter", job.pk, read_jsonl(job.candidates_file))
    except Exception as exc:  # noqa: BLE001 - recorded on the row for the UI
        _give_up("filter", job.pk, exc)


@app.task(
    name="rewardmodels.score_chunk", bind=True, acks_late=True, reject_on_worker_lost=True,
    ignore_result=False, max_retries=CHUNK_RETRIES,
)  # fmt: skip
def score_chunk(self, kind: str, pk: int, index: int) -> int:
    """Score one part of an evaluation or a filter into its scores file; returns its index."""
    from rewardmodels.formats import read_jsonl
    from workers.ml import scoring

    model = _job_model(kind)
    job = model.objects.select_related("reward_model").filter(pk=pk).first()
    scores_file = _scores(kind, pk, index)
    if job is None or job.finished or scores_file.exists():
        return index
    running = scores_file.with_suffix(".running")
    lost = _lost_starts(running)
    if lost >= settings.SCORING_MAX_DELIVERIES:
        _give_up(kind, pk, RuntimeError(
            f"Gave up: the worker scoring part {index + 1} stopped {lost} times without "
            "finishing (out of memory? a smaller SCORING_CHUNK_ROWS makes smaller parts)."
        ))  # fmt: skip
        return index
    try:
        rows = read_jsonl(scores_file.with_suffix(".jsonl"))
        if kind == "evaluation":
            scorer = scoring.scorer_for(job.reward_model.artifact, training_precision=True)
            scores = scoring.pair_scores(scorer, rows)
        elif kind == "audit":  # scored as `score` scores, so that its file rescores alike
            scorer = scoring.scorer_for(job.reward_model.artifact)
            scores = scoring.audit_scores(scorer, rows, job.probes, check=index == 0)
        else:
            scorer = scoring.scorer_for(job.reward_model.artifact)
            rewards, tokens = scorer.score(
                [r["prompt"] for r in rows], [r["response"] for r in rows]
            )
            scores = {"rewards": rewards, "tokens": tokens}
        # Written aside under a name of its own, then renamed: whole or absent, also when
        # two deliveries of the part run at once.
        partial = scores_file.with_suffix(f".{uuid.uuid4().hex}.part")
        with partial.open("wb") as stream:
            np.savez(stream, **scores)
        partial.replace(scores_file)
    except Exception as exc:
        running.unlink(missing_ok=True)
        if self.request.retries >= self.max_retries:
            _give_up(kind, pk, exc)
            raise
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
    running.unlink()
    model.objects.filter(pk=pk).update(done=F("done") + len(rows) * responses_per_row(kind, pk))
    return index


@app.task(name="rewardmodels.gather_scores", acks_late=True, reject_on_worker_lost=True)
def gather_scores(_indexes: list[int], kind: str, pk: int) -> None:
    """Join a job's scored parts in order and finish it: an evaluation's metrics, an
    audit's results or a filter's kept rows."""
    from rewardmodels.formats import read_jsonl, write_jsonl
    from workers.ml import scoring
    from workers.ml.selection import filter_with_lengths

    model = _job_model(kind)
    job = model.objects.select_related("reward_model").filter(pk=pk).first()
    if job is None or job.finished:
        return
    folder = _parts_folder(kind, pk)
    try:
        inputs = sorted(folder.glob("*.jsonl"))
        rows = [row for path in inputs for row in read_jsonl(path)]
        parts = [np.load(path.with_suffix(".npz")) for path in inputs]
        scores = {key: np.concatenate([part[key] for part in parts]) for key in parts[0].files}
        if kind == "evaluation":
            outcome = _evaluation_results(job, rows, scores)
        elif kind == "audit":
            outcome = _audit_results(job, rows, scores)
        else:
            slope = scoring.reward_per_token(scoring.training_record(job.reward_model.artifact))
            kept, lengths = filter_with_lengths(rows, scores["rewards"], scores["tokens"],
                                                job.keep_top, job.threshold, job.normalize,
                                                slope)  # fmt: skip
            output = job.output_path()
            write_jsonl(output, kept)
            outcome = {"n_kept": len(kept), "output_file": str(output), "lengths": lengths}
    except Exception as exc:  # noqa: BLE001 - recorded on the row for the UI
        _give_up(kind, pk, exc)
        return
    job_succeed(model, pk, done=F("total"), **outcome)
    shutil.rmtree(folder, ignore_errors=True)
    if kind in ("evaluation", "audit"):
        advance_retraining(job=job)


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
