"""What a person waits for has a queue of its own: a scoring host's `-Q interactive` worker
answers a score request while its `-Q interactive,scoring` worker scores an evaluation, and
a request nobody answers in time is a 503 with Retry-After after INTERACTIVE_WAIT_SECONDS,
leaving nothing behind in the broker or the result backend."""

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Judge
from rewardmodels.evaluation.services import evaluation_create
from rewardmodels.models import EvaluationRun
from tests.conftest import client_for, logged_in
from tests.factories import PairFactory, separable_rows
from tests.workers.conftest import redis_url
from tests.workers.test_scoring_queue import POLITE, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BODY = {"items": [{"prompt": "Question 4: name some fruit.", "response": "No. plum"},
                  {"prompt": "Question 4: name some fruit.", "response": POLITE}]}  # fmt: skip
# One part of the default SCORING_CHUNK_ROWS (4,096 rows): 2,048 responses, which one CPU
# thread scores with the packaged MiniLM in seconds (about 20 on two busy cores); a score
# request a warm worker answers takes a tenth of a second.
EVALUATION_PAIRS = 1024


def pairs_upload(n: int) -> SimpleUploadedFile:
    lines = "".join(json.dumps(row) + "\n" for row in separable_rows(n, seed=7))
    return SimpleUploadedFile("held-out.jsonl", lines.encode())


def left_in_redis(client) -> list[bytes]:
    """Task results and queued messages: what a request that gave up must not leave."""
    return sorted(client.keys("celery-task-meta-*") + client.keys("interactive*"))


def log_of(workers, index: int) -> str:
    return workers.logs[index].read_text()


def finished(task: str, log: str) -> int:
    """How many of `task` the worker's log says succeeded."""
    return sum(f"{task}[" in line and " succeeded in " in line for line in log.splitlines())


def post_score(user, model, body=BODY):
    started = time.monotonic()
    answer = client_for(user).post(f"/api/reward-models/{model.pk}/score", body, format="json")
    return answer, time.monotonic() - started


def test_a_score_request_is_answered_while_an_evaluation_is_scored_on_the_host(
    results_in_redis, workers, reward_model, lead, settings
):
    env = {"CELERY_RESULT_BACKEND": redis_url()}
    settings.INTERACTIVE_WAIT_SECONDS = 60  # the first request loads torch and the model
    workers("interactive", **env)  # one scoring host: this beside the scoring worker
    warm, _ = post_score(lead, reward_model)  # answered by it: the only worker yet
    assert warm.status_code == 200, f"{warm.content}\n{log_of(workers, 0)}"
    workers("interactive,scoring", **env)
    wait_for(lambda: "ready." in log_of(workers, 1), "the scoring worker", workers.logs)

    evaluation = evaluation_create(reward_model=reward_model, user=None,
                                   upload=pairs_upload(EVALUATION_PAIRS))  # fmt: skip
    wait_for(lambda: "rewardmodels.score_chunk[" in log_of(workers, 1),
             "the scoring worker to take the evaluation's part", workers.logs)  # fmt: skip
    settings.INTERACTIVE_WAIT_SECONDS = 15  # the default: a warm model answers well within
    answer, seconds = post_score(lead, reward_model)
    scoring = log_of(workers, 1)
    evaluation.refresh_from_db()
    assert answer.status_code == 200, f"{answer.content}\n{scoring[-3000:]}"
    curt, polite = answer.json()["rewards"]
    assert polite > curt
    # Answered while the part was being scored: the scoring worker had not finished it.
    assert finished("rewardmodels.score_chunk", scoring) == 0, scoring[-3000:]
    assert evaluation.status == EvaluationRun.Status.RUNNING and evaluation.done == 0

    started = time.monotonic()
    wait_for(lambda: EvaluationRun.objects.get(pk=evaluation.pk).finished, "the evaluation",
             workers.logs, timeout=600)  # fmt: skip
    remaining = time.monotonic() - started
    evaluation.refresh_from_db()
    assert evaluation.status == EvaluationRun.Status.SUCCEEDED, evaluation.error
    assert seconds < remaining / 2, (seconds, remaining)  # well before it, not after it
    print(f"score answered in {seconds:.2f} s; the evaluation took {remaining:.1f} s more")


def test_with_no_worker_on_the_queue_the_api_answers_503_at_the_bound_and_leaves_nothing(
    results_in_redis, broker, workers, reward_model, lead, settings
):
    settings.INTERACTIVE_WAIT_SECONDS = 2
    answer, seconds = post_score(lead, reward_model)
    assert answer.status_code == 503, answer.content
    assert 2 <= seconds < 6, seconds  # the bound, and a second to ask who serves the queue
    assert answer["Retry-After"] == "30"
    assert "no worker is serving the interactive queue" in answer.json()["detail"]
    assert left_in_redis(broker) == [b"interactive"]  # the request, queued: it has expired

    workers("interactive", CELERY_RESULT_BACKEND=redis_url())  # comes late, drops it unrun
    wait_for(lambda: "Discarding revoked task: rewardmodels.score" in log_of(workers, 0),
             "the worker to drop the expired request", workers.logs)  # fmt: skip
    time.sleep(2)  # time to store what a dropped task leaves, were it kept
    assert left_in_redis(broker) == [], log_of(workers, 0)
    assert "succeeded" not in log_of(workers, 0)


def test_an_answer_that_comes_too_late_is_a_503_then_the_retry_is_answered(
    results_in_redis, broker, workers, reward_model, lead, settings
):
    """A worker just started loads torch and the model on its first request, for longer than
    the bound here: the client is told to come back, the answer that comes later is dropped,
    and the retry finds the model loaded."""
    workers("interactive", CELERY_RESULT_BACKEND=redis_url())
    wait_for(lambda: "ready." in log_of(workers, 0), "the worker", workers.logs)
    settings.INTERACTIVE_WAIT_SECONDS = 1
    answer, seconds = post_score(lead, reward_model)
    assert answer.status_code == 503, answer.content
    assert seconds < 5, seconds
    assert answer["Retry-After"] == "1"  # busy, not absent: come back soon
    assert "busy (or loading the model" in answer.json()["detail"]

    wait_for(lambda: finished("rewardmodels.score", log_of(workers, 0)) == 1,
             "the late answer", workers.logs)  # fmt: skip
    time.sleep(1)
    assert left_in_redis(broker) == [], log_of(workers, 0)

    settings.INTERACTIVE_WAIT_SECONDS = 15
    retried, _ = post_score(lead, reward_model)
    assert retried.status_code == 200, retried.content
    assert left_in_redis(broker) == []  # a result read is removed too

    reward_model.artifact = str(reward_model.artifact) + "-gone"  # its folder was removed
    reward_model.save()
    failed, _ = post_score(lead, reward_model)  # the worker's failure, not a broker away
    assert failed.status_code == 502, failed.content
    assert "Scoring failed on the worker" in failed.json()["detail"]
    assert left_in_redis(broker) == []


def test_a_judge_s_preview_nobody_answers_is_a_503_page_with_retry_after(
    results_in_redis, broker, project, admin_user, settings
):
    PairFactory(project=project)
    judge = Judge.objects.create(name="j", model="m")
    settings.INTERACTIVE_WAIT_SECONDS = 1
    started = time.monotonic()
    page = logged_in(admin_user).post(f"/projects/{project.pk}/judging/",
                                      {"action": "ask", "judge": judge.pk})  # fmt: skip
    assert time.monotonic() - started < 5
    assert page.status_code == 503 and page["Retry-After"] == "30"
    shown = page.content.decode()
    assert "No worker answered within 1 s" in shown and "interactive_judge" in shown
