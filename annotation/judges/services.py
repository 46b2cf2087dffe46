"""LLM judges: saving one (its key encrypted, or named), the pairs a judging job takes, the
requests each pair becomes, the labels its verdicts become, and queueing jobs. The requests
themselves go out from a worker (workers/tasks/ with workers/llm.py)."""

import json
import os
import random
import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from annotation.activity import Kind, record
from annotation.agreement.services import consensus_refresh
from annotation.jobs import job_fail, job_send, job_succeed
from annotation.judges import prompts as judging
from annotation.judges.secrets import KeyUnreadable, decrypt, encrypt, key_variable_refused
from annotation.models import Judge, JudgingJob, Label, Pair, PairConsensus, Project
from annotation.models.judges import MAX_FAILURES_KEPT
from config.celery import RETRY_AFTER_SECONDS, BrokerUnavailable, NoAnswer, answer_of

JUDGE_TASK = "annotation.judge"
ASK_TASK = "annotation.judge_ask"


class JudgeUnavailable(Exception):
    """No worker answered the preview's request in time, or its answer cannot be read here;
    `retry_after`: seconds worth waiting before asking again (None: asking again will not do)."""

    def __init__(self, message: str, *, retry_after: int | None = RETRY_AFTER_SECONDS):
        super().__init__(message)
        self.retry_after = retry_after


VISIBLE_ASCII = re.compile(r"[!-~]*")
KEY_DROPPED = (
    "The stored key was removed because the base URL or provider changed; enter the key again."
)


def judge_save(
    *, judge: Judge | None = None, user: AbstractBaseUser | None, api_key: str = "", **fields
) -> Judge:
    """Create or change a judge. A key given is stored encrypted (and replaces a named one);
    without one, a stored key stays, unless the base URL or provider changes (KEY_DROPPED).
    The key is never returned."""
    api_key = api_key.strip()
    if not VISIBLE_ASCII.fullmatch(api_key):  # it goes in an HTTP header as it is
        raise ValidationError(
            {"api_key": "An API key holds printable ASCII characters only (no spaces, accents "
             "or curly quotes); paste it again."}
        )  # fmt: skip
    judge = judge or Judge(created_by=user)
    # Read from the row: a bound form has changed the instance already.
    stored = Judge.objects.filter(pk=judge.pk).values().first()
    for name, value in fields.items():
        setattr(judge, name, value)
    if api_key:
        judge.api_key_encrypted, judge.api_key_env = encrypt(api_key), ""
    elif judge.api_key_env:
        if refused := key_variable_refused(judge.api_key_env):
            raise ValidationError({"api_key_env": refused})
        judge.api_key_encrypted = ""  # a named variable replaces a stored key
    elif stored and (stored["base_url"], stored["provider"]) != (judge.base_url, judge.provider):
        # The key goes out with every request: kept, it would go to the new endpoint, which
        # could send it back in an answer that the preview shows.
        judge.api_key_encrypted = ""
    judge.full_clean(exclude=["created_by"])
    judge.save()
    _record_judge_saved(judge, stored, user)
    return judge


def _record_judge_saved(judge: Judge, stored: dict | None, user: AbstractBaseUser | None) -> None:
    """The judge's creation, or what changed in it; a key's change as "key changed", never
    the key (record scrubs fields named for secrets)."""
    if stored is None:
        record(Kind.JUDGE_CREATED, actor=user, target=judge, summary=judge.name)
        return
    changes = {
        field.attname.removesuffix("_encrypted"): (
            stored[field.attname],
            getattr(judge, field.attname),
        )
        for field in Judge._meta.concrete_fields
        if field.attname in stored and stored[field.attname] != getattr(judge, field.attname)
    }
    if changes:
        record(Kind.JUDGE_CHANGED, actor=user, target=judge, summary=judge.name, changes=changes)


def judge_api_key(judge: Judge) -> str:
    """The key, where the requests go out (a worker): decrypted, or read from the named
    environment variable; empty for local servers that want none."""
    if judge.api_key_encrypted:
        return decrypt(judge.api_key_encrypted)
    if judge.api_key_env:
        if refused := key_variable_refused(judge.api_key_env):
            raise ValueError(refused)
        key = os.environ.get(judge.api_key_env)
        if not key:
            raise ValueError(f"${judge.api_key_env} is not set on this worker.")
        return key
    return ""


# ---------------------------------------------------------------------------------------
# What is judged


def judgeable_pairs(*, project: Project, choice: str) -> QuerySet[Pair]:
    """The project's pairs of one kind (JudgingJob.Pairs), in id order."""
    pairs = Pair.objects.filter(project=project).order_by("id")
    if choice == JudgingJob.Pairs.UNLABELLED:
        by_people = Label.objects.filter(pair=OuterRef("pk"), annotator__isnull=False)
        pairs = pairs.filter(~Exists(by_people))
    elif choice == JudgingJob.Pairs.CONTESTED:
        contested = PairConsensus.objects.filter(pair=OuterRef("pk"), contested=True)
        pairs = pairs.filter(Exists(contested))
    elif choice == JudgingJob.Pairs.GOLD:
        pairs = pairs.exclude(gold_choice="")
    return pairs


def job_pair_ids(job: JudgingJob) -> list[int]:
    """The pairs a job judges: its choice, less those its judge has labelled already (so a
    job resumed, or run again, judges nothing twice), at most `limit` of them."""
    pairs = judgeable_pairs(project=job.project, choice=job.pairs)
    judged = Label.objects.filter(
        pair=OuterRef("pk"), annotator__isnull=True, source=job.judge.name
    )
    ids = list(pairs.filter(~Exists(judged)).values_list("id", flat=True))
    if job.pairs == JudgingJob.Pairs.SAMPLE and job.limit:
        chosen = random.Random(job.pk).sample(ids, min(job.limit, len(ids)))
        return sorted(chosen)
    return ids[: job.limit] if job.limit else ids


def judge_requests(project: Project, pair: dict, token: str | None = None) -> tuple[str, str]:
    """The two requests for a pair {prompt, response_a, response_b}: a shown first, then b."""
    return judging.requests_for(
        project.judge_template, pair, guidelines=project.guidelines,
        criteria=project.judge_criteria_list, allow_ties=project.allow_ties, token=token,
    )  # fmt: skip


def pair_texts(pair_ids: list[int]) -> list[dict]:
    return list(
        Pair.objects.filter(id__in=pair_ids)
        .order_by("id")
        .values("id", "external_id", "prompt", "response_a", "response_b")
    )


# ---------------------------------------------------------------------------------------
# Jobs


def judging_job_create(
    *,
    judge: Judge,
    project: Project,
    user: AbstractBaseUser | None,
    pairs: str = JudgingJob.Pairs.UNLABELLED,
    limit: int | None = None,
) -> JudgingJob:
    """Queue a judge over a project's pairs on the default queue."""
    if pairs == JudgingJob.Pairs.SAMPLE and not limit:
        raise ValidationError({"limit": "Say how many pairs to sample."})
    job = JudgingJob(judge=judge, project=project, pairs=pairs, limit=limit, created_by=user)
    job.full_clean(exclude=["judge", "project", "created_by"])
    with transaction.atomic():
        job.save()
        job.total = len(job_pair_ids(job))
        job.save(update_fields=["total"])
        record(
            Kind.JUDGING_STARTED,
            actor=user,
            target=job,
            summary=f"{judge.name} over {job.total} pairs ({job.get_pairs_display()})",
        )
        transaction.on_commit(lambda: job_send(JudgingJob, job.pk, JUDGE_TASK))
    return job


def judging_job_cancel(*, job: JudgingJob) -> None:
    """Stop after the requests in flight; a queued job is cancelled at once."""
    JudgingJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    JudgingJob.objects.filter(pk=job.pk, status=JudgingJob.Status.QUEUED).update(
        status=JudgingJob.Status.CANCELLED
    )


def judging_job_finish(*, job_id: int) -> None:
    """A job whose requests have all come back: cancelled if that was asked; failed when no
    pair got a label and some failed (with the first failure's error); else succeeded, its
    failed pairs counted."""
    job = JudgingJob.objects.get(pk=job_id)
    if job.cancel_requested:
        JudgingJob.objects.filter(pk=job_id, status=JudgingJob.Status.RUNNING).update(
            status=JudgingJob.Status.CANCELLED, finished_at=timezone.now()
        )
    elif job.failed and not job.done:
        first = job.failures[0]["error"] if job.failures else "no answer could be used"
        job_fail(JudgingJob, job_id, f"All {job.failed} pairs failed; the first: {first}")
    else:
        job_succeed(JudgingJob, job_id)


def judged_write(*, job: JudgingJob, outcomes: list, seconds: float) -> None:
    """Record finished pairs: a label for each judged one (none twice: a pair labelled by the
    judge already keeps its label), the failures with their raw answers, and the counters."""
    labels, failures, inconsistent = [], [], 0
    for outcome in outcomes:
        if not outcome.ok:
            failures.append(
                {"pair": outcome.key, "error": outcome.error, "raw": outcome.raw[:2000]}
            )
            continue
        label = judging.combine(*outcome.verdicts, on_flip=job.project.judge_on_flip)
        inconsistent += not label.consistent
        labels.append(
            Label(
                pair_id=outcome.key, source=job.judge.name, choice=label.choice,
                strength=label.strength, rationale=label.rationale,
                position_consistent=label.consistent,
            )
        )  # fmt: skip
    with transaction.atomic():
        Label.objects.bulk_create(labels, ignore_conflicts=True)
        consensus_refresh(pair_ids=[label.pair_id for label in labels])
        JudgingJob.objects.filter(pk=job.pk).update(
            done=F("done") + len(labels), failed=F("failed") + len(failures),
            inconsistent=F("inconsistent") + inconsistent,
            requests=F("requests") + sum(o.requests for o in outcomes),
            input_tokens=F("input_tokens") + sum(o.input_tokens for o in outcomes),
            output_tokens=F("output_tokens") + sum(o.output_tokens for o in outcomes),
            seconds=F("seconds") + seconds,
        )  # fmt: skip
        if failures:
            job.refresh_from_db(fields=["failures"])
            job.failures = (job.failures + failures)[-MAX_FAILURES_KEPT:]
            job.save(update_fields=["failures"])


def judge_ask(*, judge: Judge, text: str) -> dict:
    """Send one request to the judge from a worker on the interactive_judge queue and wait
    for its raw answer (the template preview's button), at most INTERACTIVE_WAIT_SECONDS:
    {text, verdict or error, input_tokens, output_tokens}."""
    try:
        sealed = answer_of(ASK_TASK, judge.pk, text)
    except BrokerUnavailable as exc:
        raise JudgeUnavailable(f"Cannot ask the judge now: {exc}.") from exc
    except NoAnswer as exc:
        if exc.served:
            why = (
                f"the workers on the {exc.queue} queue are busy, or the judge takes longer than "
                "that to answer (INTERACTIVE_WAIT_SECONDS); try again shortly"
            )
        else:
            why = (
                f"no worker is serving the {exc.queue} queue (`celery -A workers worker -Q "
                f"{exc.queue}` where judging jobs run; make run starts one)"
            )
        raise JudgeUnavailable(
            f"No worker answered within {exc.seconds:g} s: {why}.", retry_after=exc.retry_after
        ) from exc
    try:
        return json.loads(decrypt(sealed))
    except KeyUnreadable as exc:
        raise JudgeUnavailable(
            "The worker's answer cannot be read here: give the web and worker hosts the same "
            "SECRET_KEY.",
            retry_after=None,
        ) from exc
