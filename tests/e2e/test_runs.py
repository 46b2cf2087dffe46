"""An admin watches a training run and an evaluation in a real headless Chromium: the pages
follow their rows."""

import pytest

from annotation.models import CuratedDataset
from rewardmodels.models import EvaluationRun, RewardModel, TrainingRun
from tests.e2e.conftest import wait_until
from tests.e2e.test_annotate import log_in
from tests.factories import PASSWORD, ProjectFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fruit_dataset() -> CuratedDataset:
    return CuratedDataset.objects.create(
        project=ProjectFactory(), name="fruit", version=1, identifier="fruit@v1",
        n_rows=40, n_train=30, n_test=10,
    )  # fmt: skip


def test_run_page_follows_progress_without_reload(live_server, page):
    UserFactory(username="ada", password=PASSWORD, is_staff=True)
    dataset = fruit_dataset()
    run = TrainingRun.objects.create(
        dataset=dataset, status=TrainingRun.Status.RUNNING, step=1, total_steps=10,
        eta_seconds=90, metrics=[{"step": 1, "loss": 0.7}], log_tail="step 1",
    )  # fmt: skip

    log_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    assert page.inner_text("#run-steps") == "step 1 / 10"
    page.evaluate("window.notReloaded = true")

    TrainingRun.objects.filter(pk=run.pk).update(
        step=5,
        eta_seconds=40,
        log_tail="step 5 <b>not bold</b>",
        metrics=[
            {"step": 1, "loss": 0.7},
            {"step": 5, "loss": 0.4, "eval": {"accuracy": 0.8, "loss": 0.5}},
        ],
    )
    wait_until(page, "() => document.getElementById('run-steps').textContent === 'step 5 / 10'")
    assert page.evaluate("window.notReloaded") is True
    assert page.eval_on_selector("#run-bar", "bar => bar.style.width") == "50%"
    assert "about 40 s left" in page.inner_text("#run-eta")
    assert page.inner_text("#run-log") == "step 5 <b>not bold</b>"  # text, not markup
    assert page.locator("#run-live svg").count() == 2  # the accuracy chart appeared

    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click("text=Cancel run")  # dismissed: nothing happens
    page.wait_for_timeout(300)
    assert dialogs and not TrainingRun.objects.get(pk=run.pk).cancel_requested
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Cancel run")
    page.wait_for_selector("text=stops after its current step")
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested


def test_evaluation_page_follows_its_job_and_shows_the_outcome(live_server, page):
    UserFactory(username="ada", password=PASSWORD, is_staff=True)
    dataset = fruit_dataset()
    run = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.SUCCEEDED)
    model = RewardModel.objects.create(
        identifier="rm-1-fruit-v1", run=run, project=dataset.project,
        dataset=dataset, base_model=run.base_model,
        artifact="/nowhere",
    )  # fmt: skip
    job = EvaluationRun.objects.create(
        reward_model=model, upload_name="pairs.jsonl", status=EvaluationRun.Status.RUNNING,
        done=10, total=100,
    )  # fmt: skip

    log_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/evaluations/{job.pk}/")
    assert page.inner_text("#job-count") == "10 / 100 responses scored"
    page.evaluate("window.notReloaded = true")

    EvaluationRun.objects.filter(pk=job.pk).update(done=50)
    wait_until(
        page,
        "() => document.getElementById('job-count').textContent === '50 / 100 responses scored'",
    )
    assert page.evaluate("window.notReloaded") is True
    assert page.eval_on_selector("#job-bar", "bar => bar.style.width") == "50%"

    EvaluationRun.objects.filter(pk=job.pk).update(
        status=EvaluationRun.Status.FAILED, error="the worker ran out of memory"
    )
    wait_until(page, "() => window.notReloaded === undefined")  # the finished page loaded
    assert page.inner_text("#job-status") == "Failed"
    assert "ran out of memory" in page.inner_text("#job-error")
