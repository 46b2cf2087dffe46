"""Scoring has a queue of its own: with one worker per queue on a GPU machine, a score
request is answered while a training run holds the gpu worker for hours."""

import json
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.celery import enqueue
from rewardmodels.models import TrainingRun
from rewardmodels.scoring.services import filter_create
from rewardmodels.training.services import TRAIN_TASK, training_run_cancel
from tests.conftest import client_for
from tests.workers.conftest import redis_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

POLITE = "Gladly! mango pear. I hope that helps, thank you for asking."


def candidates_upload(rows: list[dict]) -> SimpleUploadedFile:
    return SimpleUploadedFile("c.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())


@pytest.fixture
def eager_copy_of_filter(reward_model, settings):
    """Twelve prompts of three candidates, and what a filter in one piece keeps of them
    (inline, in this process): (prompt, response, rank) in order."""
    from config.celery import app
    from rewardmodels.models import FilterRun

    rows = [{"prompt": f"Question {i}: name some fruit.",
             "responses": ["No. plum", POLITE, f"No. {i} figs"]} for i in range(12)]  # fmt: skip
    app.conf.task_always_eager = True
    try:
        job = filter_create(reward_model=reward_model, user=None, keep_top=0.34,
                            upload=candidates_upload(rows))  # fmt: skip
    finally:
        app.conf.task_always_eager = False
    job.refresh_from_db()
    assert job.status == FilterRun.Status.SUCCEEDED, job.error
    kept = [json.loads(line) for line in Path(job.output_file).read_text().splitlines()]
    job.delete()
    return rows, [(r["prompt"], r["response"], r["rank"]) for r in kept]


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("rewardmodels.train", "gpu"),
        ("rewardmodels.score", "interactive"),
        ("annotation.judge_ask", "interactive_judge"),
        ("rewardmodels.evaluate", "scoring"),
        ("rewardmodels.filter", "scoring"),
        ("rewardmodels.score_chunk", "scoring"),
        ("rewardmodels.gather_scores", "scoring"),
    ],
)
def test_training_alone_goes_to_the_gpu_queue(task, queue):
    from config.celery import app

    assert app.amqp.router.route({}, task)["queue"].name == queue


def wait_for(condition, what: str, logs, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    output = "\n".join(log.read_text()[-3000:] for log in logs)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{output}")


def test_scores_come_back_while_a_run_trains(
    results_in_redis, workers, dataset, reward_model, lead, settings
):
    # The worker loads torch and the model on the first request, beside a run training on
    # a small machine: more than the default wait.
    settings.INTERACTIVE_WAIT_SECONDS = 45
    workers("gpu", CELERY_RESULT_BACKEND=redis_url())
    workers("interactive,scoring", CELERY_RESULT_BACKEND=redis_url())
    # Far more steps than the test needs (above the form's 20-epoch limit, so made here,
    # not through training_run_create): the run is cancelled at the end.
    run = TrainingRun.objects.create(
        dataset=dataset, epochs=500, batch_size=4, max_length=64, eval_every=10**6,
        checkpoint_every=10**6,
    )  # fmt: skip
    enqueue(TRAIN_TASK, run.pk)

    def training():
        run.refresh_from_db()
        return run.status == TrainingRun.Status.RUNNING and run.step > 0

    wait_for(training, "the run to start training", workers.logs)
    body = {"items": [{"prompt": "Question 4: name some fruit.", "response": "No. plum"},
                      {"prompt": "Question 4: name some fruit.", "response": POLITE}]}  # fmt: skip
    answer = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/score", body,
                                   format="json")  # fmt: skip
    run.refresh_from_db()
    logs = "\n".join(log.read_text()[-3000:] for log in workers.logs)
    assert answer.status_code == 200, f"{answer.content}\n{logs}"
    curt, polite = answer.json()["rewards"]
    assert polite > curt
    assert run.status == TrainingRun.Status.RUNNING and run.step < run.total_steps, logs

    training_run_cancel(run=run)

    def cancelled():
        run.refresh_from_db()
        return run.status == TrainingRun.Status.CANCELLED

    wait_for(cancelled, "the run to stop on cancel", workers.logs, timeout=30)


def test_a_filter_is_scored_in_parts_across_two_workers(
    results_in_redis, workers, reward_model, eager_copy_of_filter
):
    """Twelve parts on two scoring workers: both take parts, and the kept rows are those of
    a run in one piece, in the same order."""
    from rewardmodels.models import FilterRun

    env = {"CELERY_RESULT_BACKEND": redis_url(), "SCORING_CHUNK_ROWS": "3"}
    started = [workers("scoring", **env) for _ in range(2)]
    wait_for(
        lambda: all("ready." in log.read_text() for log in workers.logs),
        "both workers to be ready", workers.logs,
    )  # fmt: skip
    assert len(started) == 2
    rows, expected = eager_copy_of_filter
    job = filter_create(reward_model=reward_model, user=None, keep_top=0.34,
                        upload=candidates_upload(rows))  # fmt: skip
    wait_for(lambda: FilterRun.objects.get(pk=job.pk).finished, "the filter", workers.logs, 180)
    job.refresh_from_db()
    assert job.status == FilterRun.Status.SUCCEEDED, job.error
    assert (job.done, job.total) == (36, 36)
    kept = [json.loads(line) for line in Path(job.output_file).read_text().splitlines()]
    assert [(r["prompt"], r["response"], r["rank"]) for r in kept] == expected
    for log in workers.logs:  # every worker scored some of the parts
        assert "rewardmodels.score_chunk" in log.read_text() and "succeeded" in log.read_text()
