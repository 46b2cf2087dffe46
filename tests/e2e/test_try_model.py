"""A lead tries a model in a real headless Chromium: opens it from the model's page, adds
and removes response boxes in place, scores, and reads both rankings and why they differ."""

import pytest

from annotation.models import CuratedDataset, Membership
from rewardmodels.models import RewardModel
from tests.e2e.conftest import wait_until
from tests.e2e.test_annotate import log_in
from tests.factories import MembershipFactory, ProjectFactory
from tests.rewardmodels.test_api import scored_by_a_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_tries_a_model_and_reads_why_the_short_answer_ranks_first(
    live_server, page, monkeypatch, eager
):
    project = ProjectFactory(name="Helpfulness")
    MembershipFactory(project=project, user__username="lea", role=Membership.Role.LEAD)
    dataset = CuratedDataset.objects.create(
        project=project, name="fruit", version=1, identifier="fruit@v1", n_rows=40,
        n_train=30, n_test=10,
    )  # fmt: skip
    model = RewardModel.objects.create(
        identifier="rm-fruit", project=project, dataset=dataset, base_model="minilm",
        artifact="/models/rm-fruit",
    )  # fmt: skip
    # A long padded answer earns the most reward, all of it from its length.
    scored_by_a_worker(monkeypatch, [1.0, 0.8, 0.2], [200, 20, 30], 0.0021)

    log_in(page, live_server, "lea")
    page.goto(f"{live_server.url}/models/{model.identifier}/")
    page.click("#try-link")
    page.wait_for_selector("h1:has-text('Try rm-fruit')")
    page.evaluate("window.notReloaded = true")
    assert page.locator("textarea[name=response]").count() == 2
    page.click("#add-response")
    page.click("#add-response")
    assert page.locator("textarea[name=response]").count() == 4
    assert page.evaluate("window.notReloaded") is True  # added in place
    page.click("text=Remove response C")
    letters = page.locator(".response-box label .letter").all_inner_texts()
    assert letters == ["A", "B", "C"]

    page.fill("textarea[name=prompt]", "Name some fruit.")
    boxes = page.locator("textarea[name=response]")
    for index, text in enumerate(["Sure! " * 40, "Plum and pear.", "Whatever."]):
        boxes.nth(index).fill(text)
    boxes.nth(2).press("Control+Enter")
    page.wait_for_selector("#rankings")
    why = page.inner_text("#why")
    assert "B ranks first (2nd by reward): A's lead of 0.2 in reward comes from its 180" in why
    assert page.get_attribute("#row-B", "data-adjusted-rank") == "1"
    assert page.get_attribute("#row-A", "data-rank") == "1"
    assert "/api/reward-models/rm-fruit/best-of-n" in page.inner_text("#curl")
    wait_until(page, "() => getComputedStyle(document.getElementById('copy-curl')).display"
               " !== 'none' || !navigator.clipboard")  # fmt: skip
    assert page.input_value("textarea[name=prompt]") == "Name some fruit."  # kept to edit
    page.screenshot(path="/tmp/try-model.png", full_page=True)
