"""Annotation's work on the default queue: re-grading, search indexing, LLM judges."""

import logging
import threading
import time

from config.celery import app, current_message
from workers.tasks.jobs import fails_its_job

logger = logging.getLogger(__name__)


@app.task(name="annotation.regrade", acks_late=True, reject_on_worker_lost=True)
def regrade(project_id: int) -> int:
    """Re-grade a project's labelled pairs after its difficulty or consensus rule changed,
    fitting a weighted rule first (idempotent: a redelivered task grades them again by the
    rules as they are then)."""
    from annotation.projects.services import project_regrade

    return project_regrade(project_id=project_id)


@app.task(name="annotation.refit_consensus")
def refit_consensus() -> list[int]:
    """Beat: re-grade the projects whose weighted consensus rule was fitted on a tenth fewer
    labels than they have now (consensus_refits_due); returns their ids."""
    from annotation.agreement.selectors import consensus_refits_due
    from annotation.projects.services import project_regrade

    due = consensus_refits_due()
    for project_id in due:
        project_regrade(project_id=project_id)
    return due


@app.task(name="annotation.trim_activity")
def trim_activity() -> int:
    """Beat, daily: remove activity entries past ACTIVITY_RETENTION_DAYS; returns how many."""
    from annotation.activity import activity_trim

    return activity_trim()


SEARCH_INDEX_SECONDS = 60


@app.task(name="annotation.index_search")
def index_search() -> int:
    """Make new pairs searchable (annotation.services.pairs_search_index), a batch per
    transaction, for at most SEARCH_INDEX_SECONDS; what is left goes on in a new task, so a
    million imported pairs do not hold a worker. Imports send it on commit; beat sends it
    every minute for pairs made elsewhere. Returns how many pairs it indexed."""
    from annotation.pairs.search import pairs_search_index, search_index_soon

    done, deadline = 0, time.monotonic() + SEARCH_INDEX_SECONDS
    while time.monotonic() < deadline:
        indexed = pairs_search_index()
        done += indexed
        if not indexed:
            return done
    search_index_soon()
    return done


# ---------------------------------------------------------------------------------------
# LLM judges, on the default queue: requests go out from here, labels come back as rows.

JUDGE_FLUSH_SECONDS = 0.5  # finished pairs are written at least this often ...
JUDGE_FLUSH_PAIRS = 200  # ... or every this many, whichever comes first


def _endpoint(judge):
    from annotation.judges.services import judge_api_key
    from workers.llm import Endpoint

    return Endpoint(
        provider=judge.provider, base_url=judge.base_url, model=judge.model,
        api_key=judge_api_key(judge), temperature=judge.temperature,
        max_tokens=judge.max_tokens, timeout=judge.timeout_seconds,
    )  # fmt: skip


@app.task(name="annotation.judge", acks_late=True, reject_on_worker_lost=True)
@fails_its_job("annotation.JudgingJob")
def judge_pairs(job_id: int) -> None:
    """Judge a job's pairs, both orders each, writing labels as pairs finish. A killed
    worker's job comes back and judges only what has no label from its judge yet."""
    from annotation import jobs
    from annotation.judges import services as judges
    from annotation.judges.prompts import parse_verdict
    from annotation.models import JudgingJob
    from workers.llm import judge_all

    if not jobs.job_start(JudgingJob, job_id, current_message()):
        return  # finished or cancelled already: a message delivered twice does no harm
    job = JudgingJob.objects.select_related("judge", "project").get(pk=job_id)
    endpoint = _endpoint(job.judge)
    pairs = judges.pair_texts(judges.job_pair_ids(job))
    items = [(pair["id"], judges.judge_requests(job.project, pair)) for pair in pairs]
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
    judges.judged_write(job=job, outcomes=pending, seconds=time.monotonic() - last)
    judges.judging_job_finish(job_id=job.pk)


@app.task(name="annotation.judge_ask", ignore_result=False)
def judge_ask(judge_id: int, text: str) -> str:
    """One request to a judge, for the template preview: its raw answer and what it parses
    to (or why it does not), sealed (annotation.secrets): Celery logs a task's result at
    INFO, puts it in task events and keeps it in the result backend, and an answer may
    carry anything the endpoint chose to send. The caller waits, and unseals it."""
    import json

    from annotation.judges.secrets import encrypt

    return encrypt(json.dumps(_asked(judge_id, text)))


def _asked(judge_id: int, text: str) -> dict:
    import asyncio

    from annotation.judges.prompts import MalformedAnswer, parse_verdict
    from annotation.judges.secrets import KeyUnreadable
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
    except (RequestFailed, ValueError, KeyUnreadable) as exc:
        return {"text": "", "error": str(exc)}
    answer = {"text": reply.text, "input_tokens": reply.input_tokens,
              "output_tokens": reply.output_tokens}  # fmt: skip
    try:
        verdict = parse_verdict(reply.text)
    except MalformedAnswer as exc:
        return {**answer, "error": f"malformed answer: {exc}"}
    return {**answer, "verdict": {"winner": verdict.winner, "strength": verdict.strength,
                                  "reasoning": verdict.reasoning}}  # fmt: skip
