"""An admin watches a training run in a real headless Chromium: the page follows the row."""

import pytest

from annotation.models import CuratedDataset
from rewardmodels.models import TrainingRun
from tests.e2e.test_annotate import log_in
from tests.factories import PASSWORD, ProjectFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_run_page_follows_progress_without_reload(live_server, page):
    UserFactory(username="ada", password=PASSWORD, is_staff=True)
    dataset = CuratedDataset.objects.create(
        project=ProjectFactory(), name="fruit", version=1, identifier="fruit@v1",
        n_rows=40, n_train=30, n_test=10,
    )  # fmt: skip
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
    page.wait_for_function("document.getElementById('run-steps').textContent === 'step 5 / 10'")
    assert page.evaluate("window.notReloaded") is True
    assert page.eval_on_selector("#run-bar", "bar => bar.style.width") == "50%"
    assert "about 40 s left" in page.inner_text("#run-eta")
    assert page.inner_text("#run-log") == "step 5 <b>not bold</b>"  # text, not markup
    assert page.locator("#run-live svg").count() == 2  # the accuracy chart appeared

    page.click("text=Cancel run")
    page.wait_for_selector("text=stops after its current step")
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested
