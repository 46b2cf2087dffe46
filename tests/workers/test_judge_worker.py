"""A judging job on a real `celery worker` (Redis, PostgreSQL) against a real HTTP server
speaking the OpenAI protocol: killed mid-job, it comes back and judges only what is left."""

import signal
import time
from collections import Counter

import psutil
import pytest

from annotation.judges.services import judge_save, judging_job_create
from annotation.models import JudgingJob, Label
from tests.factories import PairFactory
from tests.llm_servers import LLMServer, fenced_parts, knows_better, verdict

PAIRS = 60
TIMEOUT = 120

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def slow(text: str) -> str:
    time.sleep(0.05)  # long enough for the job to be caught half-way
    return knows_better(text)


def wait_for(condition, job: JudgingJob, logs, what: str):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if condition():
            return
        time.sleep(0.05)
    tails = "\n".join(log.read_text()[-3000:] for log in logs)
    pytest.fail(f"timed out waiting for {what}: {job.status}, {job.done}/{job.total}\n{tails}")


def test_a_killed_worker_s_job_resumes_and_judges_no_pair_twice(project, broker, workers):
    for i in range(PAIRS):
        PairFactory(project=project, response_a=f"GOOD {i}", response_b=f"poor {i}")
    with LLMServer(slow) as server:
        judge = judge_save(user=None, name="slow-judge", model="m", base_url=server.url,
                           concurrency=2)  # fmt: skip
        job = judging_job_create(judge=judge, project=project, user=None)
        worker = workers("celery")
        wait_for(lambda: job.done >= 10, job, workers.logs, "some pairs judged")

        (child,) = psutil.Process(worker.pid).children()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        labelled_before = set(
            Label.objects.filter(source="slow-judge").values_list("pair__prompt", flat=True)
        )
        assert 10 <= len(labelled_before) < PAIRS

        wait_for(lambda: job.status == "succeeded", job, workers.logs, "the job to finish")
    labels = Label.objects.filter(source="slow-judge")
    assert labels.count() == PAIRS and {label.choice for label in labels} == {"a"}
    asked = Counter(fenced_parts(r["messages"][-1]["content"])["conversation"]
                    for r in server.requests)  # fmt: skip
    assert all(asked[prompt] == 2 for prompt in labelled_before), "a labelled pair was asked again"
    assert job.done == PAIRS and job.failed == 0
    assert len(asked) == PAIRS  # pairs finished but not yet written when it died: asked again


def test_a_preview_s_answer_comes_back_but_stays_out_of_the_worker_s_log(results_in_redis, workers):
    from django.conf import settings

    from annotation.judges.services import judge_ask
    from tests.workers.conftest import redis_url

    private = "the-judge-said-something-private"
    with LLMServer(lambda text: verdict("A", 2, private)) as server:
        judge = judge_save(user=None, name="preview-judge", model="m", base_url=server.url,
                           api_key="sk-worker-secret-5")  # fmt: skip
        workers("interactive_judge", CELERY_RESULT_BACKEND=redis_url(),
                SECRET_KEY=settings.SECRET_KEY)  # fmt: skip
        answer = judge_ask(judge=judge, text="Which is better?")
    assert answer["verdict"]["reasoning"] == private
    log = workers.logs[0].read_text()
    assert "annotation.judge_ask" in log and "succeeded" in log  # it logs at INFO ...
    assert private not in log and "sk-worker-secret-5" not in log  # ... but not the answer
