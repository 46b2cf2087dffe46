"""Every job ends in the state that says what happened: a task that fails anywhere fails its
job with the reason, a job with no pair done is not a success, and a job queued while the
broker is down waits, unsent, until a worker's sweep sends it (real workers on Redis and
PostgreSQL where a worker is the point)."""

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from annotation.judges.services import judge_save
from annotation.models import JudgingJob, Membership
from rewardmodels.evaluation.services import evaluation_create
from rewardmodels.models import TrainingRun
from rewardmodels.recovery import jobs_recover_all
from rewardmodels.scoring.services import filter_create
from tests.conftest import client_for
from tests.factories import MembershipFactory, PairFactory
from tests.llm_servers import LLMServer
from tests.workers.conftest import QUEUE, forget_broker_connections, redis_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
TIMEOUT = 180


def wait_for(condition, row, logs, what: str):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        row.refresh_from_db()
        if condition(row):
            return
        time.sleep(0.2)
    tails = "\n".join(log.read_text()[-3000:] for log in logs)
    pytest.fail(f"timed out waiting for {what}: {row.status}\n{tails}")


@pytest.fixture
def broker_down(broker, monkeypatch):
    """The broker stops answering; calling the fixture's value brings it back."""
    from config.celery import app

    working = redis_url()
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    forget_broker_connections(app)

    def back():
        monkeypatch.setenv("CELERY_BROKER_URL", working)
        forget_broker_connections(app)

    return back


def queued_a_while_ago(model):
    model.objects.update(created_at=timezone.now() - timedelta(minutes=1))


def judging_requested(project, server: LLMServer, pairs: int) -> JudgingJob:
    """A lead asks, through the API, for a judge on `server` to judge the project's `pairs`
    pairs (each with a GOOD response, which the server's judge picks)."""
    lead = MembershipFactory(project=project, role=Membership.Role.LEAD).user
    for i in range(pairs):
        PairFactory(project=project, response_a=f"GOOD {i}", response_b=f"poor {i}")
    judge_save(user=None, name="judge", model="m", base_url=server.url)
    answer = client_for(lead).post(
        f"/api/projects/{project.pk}/judging-jobs/", {"judge": "judge"}, format="json"
    )
    assert answer.status_code == 201 and answer.json()["status"] == "queued"
    return JudgingJob.objects.get(pk=answer.json()["id"])


def test_a_judging_job_queued_while_the_broker_is_down_runs_when_it_is_back(
    project, broker_down, workers
):
    with LLMServer() as server:
        job = judging_requested(project, server, pairs=4)
        assert (job.status, job.sent_at, job.error) == ("queued", None, "")
        queued_a_while_ago(JudgingJob)
        assert jobs_recover_all() == []  # still down: nothing sent, nothing lost
        job.refresh_from_db()
        assert (job.status, job.sent_at) == ("queued", None)

        broker_down()  # back
        workers("celery")  # its sweep, when it starts, sends what was never sent
        wait_for(lambda j: j.status == "succeeded", job, workers.logs, "the job to finish")
    assert job.done == 4 and job.sent_at is not None


def sent_a_while_ago(model, minutes: float = 20):
    model.objects.update(sent_at=timezone.now() - timedelta(minutes=minutes))


def test_a_judging_job_whose_message_the_broker_lost_is_sent_again_and_runs(
    project, broker, workers
):
    with LLMServer() as server:
        job = judging_requested(project, server, pairs=4)
        assert job.sent_at is not None and broker.llen("celery") == 1
        broker.delete("celery")  # the broker restarts without it
        sent_a_while_ago(JudgingJob, minutes=5)
        assert jobs_recover_all() == []  # not yet JOB_RESEND_SECONDS (15 min)
        sent_a_while_ago(JudgingJob)
        assert jobs_recover_all() == [("JudgingJob", job.pk)]
        assert jobs_recover_all() == []  # sent again once
        assert broker.llen("celery") == 1
        workers("celery")
        wait_for(lambda j: j.status == "succeeded", job, workers.logs, "the job to finish")
    assert job.done == 4 and len(server.requests) == 8  # each pair in both orders, once


def test_a_job_sent_again_while_its_first_message_was_only_slow_runs_once(project, broker, workers):
    with LLMServer() as server:
        job = judging_requested(project, server, pairs=3)
        sent_a_while_ago(JudgingJob)  # no worker served the queue for 20 minutes
        assert jobs_recover_all() == [("JudgingJob", job.pk)]
        assert broker.llen("celery") == 2  # the first message is still there
        workers("celery")
        wait_for(lambda j: j.status == "succeeded", job, workers.logs, "the job to finish")
        time.sleep(2)  # the second message is taken too, and changes nothing
        assert broker.llen("celery") == 0
    job.refresh_from_db()
    assert job.status == "succeeded" and job.done == 3 and len(server.requests) == 6


def test_only_the_message_that_started_a_job_starts_it_again(project):
    from annotation.jobs import job_start, job_succeed

    with LLMServer() as server:
        judge = judge_save(user=None, name="judge", model="m", base_url=server.url)
    job = JudgingJob.objects.create(judge=judge, project=project, total=1)
    assert job_start(JudgingJob, job.pk, "first")
    assert not job_start(JudgingJob, job.pk, "sent-again")  # while the first runs
    assert job_start(JudgingJob, job.pk, "first")  # handed back: its worker died
    job_succeed(JudgingJob, job.pk)
    assert not job_start(JudgingJob, job.pk, "first")
    job.refresh_from_db()
    assert (job.status, job.started_by) == ("succeeded", "first")
    # Started before messages were told apart: the first message handed back takes it over.
    older = JudgingJob.objects.create(judge=judge, project=project, total=1, status="running")
    assert job_start(JudgingJob, older.pk, "handed-back")
    assert not job_start(JudgingJob, older.pk, "another")


def test_a_training_task_that_fails_before_training_fails_its_run(dataset, broker, workers):
    run = TrainingRun.objects.create(dataset=dataset, max_length=64)
    default_storage.delete(dataset.snapshot)  # its rows cannot be read
    from config.celery import enqueue

    enqueue("rewardmodels.train", run.pk)
    workers(QUEUE)
    wait_for(lambda r: r.status not in ("queued", "running"), run, workers.logs, "the run to end")
    assert run.status == "failed" and "FileNotFoundError" in run.error
    assert run.finished_at is not None


@pytest.mark.parametrize("kind", ["evaluation", "filter"])
def test_scoring_jobs_queued_while_the_broker_is_down_are_sent_when_it_is_back(
    reward_model, dataset, broker_down, broker, kind
):
    if kind == "evaluation":
        job = evaluation_create(reward_model=reward_model, user=None, dataset=dataset)
    else:
        candidates = SimpleUploadedFile(
            "c.jsonl", b'{"prompt": "Hi?", "response": "Hello!"}\n{"prompt": "Hi?", '
            b'"response": "Go away."}\n'
        )  # fmt: skip
        job = filter_create(reward_model=reward_model, user=None, upload=candidates)
    job.refresh_from_db()
    assert (job.status, job.sent_at, job.error) == ("queued", None, "")
    broker_down()
    queued_a_while_ago(type(job))
    assert jobs_recover_all() == [(type(job).__name__, job.pk)]
    assert broker.llen("scoring") == 1
    assert jobs_recover_all() == []  # sent once


def test_a_judging_job_whose_every_pair_failed_is_failed(project, settings):
    for i in range(3):
        PairFactory(project=project, response_a=f"GOOD {i}", response_b=f"poor {i}")
    with LLMServer(lambda text: "I cannot decide.") as server:
        judge = judge_save(user=None, name="judge", model="m", base_url=server.url)
        job = JudgingJob.objects.create(judge=judge, project=project, total=3)
        from workers.tasks.annotation import judge_pairs

        judge_pairs(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and (job.done, job.failed) == (0, 3)
    assert job.error.startswith("All 3 pairs failed; the first:")


def test_an_error_while_labelling_fails_the_job_with_its_reason(project, monkeypatch):
    from annotation.judges import services as judges
    from workers.tasks.annotation import judge_pairs

    PairFactory(project=project)

    def broken(**kwargs):
        raise RuntimeError("the database refused the labels")

    monkeypatch.setattr(judges, "judged_write", broken)
    with LLMServer() as server:
        judge = judge_save(user=None, name="judge", model="m", base_url=server.url)
        job = JudgingJob.objects.create(judge=judge, project=project, total=1)
        judge_pairs(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "RuntimeError: the database refused the labels"
    assert job.finished_at is not None


def test_the_train_command_during_an_outage_says_the_run_is_saved_and_exits_0(dataset, broker_down):
    out, err = StringIO(), StringIO()
    call_command("train", "fruit@v1", stdout=out, stderr=err)
    run = TrainingRun.objects.get()
    assert out.getvalue().startswith(f"queued training run {run.pk}")
    assert "saved; it is sent once the broker is back" in err.getvalue()
    assert (run.status, run.sent_at) == ("queued", None)


def test_scoring_answers_503_with_retry_after_when_the_broker_is_down(
    reward_model, admin_user, broker_down, monkeypatch
):
    from config.celery import app

    # Both down, as when the one Redis stops: the broker and the result backend.
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "redis://127.0.0.1:1/0")
    app._local.__dict__.pop("backend", None)  # made for the old setting: make it again
    answer = client_for(admin_user).post(
        f"/api/reward-models/{reward_model.identifier}/score/",
        {"items": [{"prompt": "Hi?", "response": "Hello!"}]}, format="json",
    )  # fmt: skip
    assert answer.status_code == 503 and int(answer["Retry-After"]) > 0, answer.json()
    assert "cannot be reached" in answer.json()["detail"]
    app._local.__dict__.pop("backend", None)
