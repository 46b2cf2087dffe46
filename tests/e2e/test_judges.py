"""An admin sets up an LLM judge and runs it in a real headless Chromium, against a real
HTTP server speaking the OpenAI protocol (jobs run inline here); the dashboard then shows
how the judge agrees with the people and how position-consistent it was."""

import pytest

from tests.e2e.test_annotate import log_in
from tests.factories import PASSWORD, PairFactory, ProjectFactory, UserFactory
from tests.llm_servers import LLMServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_configures_previews_runs_and_reads_the_dashboard(live_server, page, eager):
    UserFactory(username="ada", password=PASSWORD, is_staff=True)
    project = ProjectFactory(name="Judged")
    for i in range(4):
        PairFactory(project=project, response_a=f"GOOD {i}", response_b=f"poor {i}")
    with LLMServer() as server:
        log_in(page, live_server, "ada")
        page.click("nav >> text=Judges")
        page.fill("input[name=name]", "local-judge")
        page.fill("input[name=base_url]", server.url)
        page.fill("input[name=model]", "judge-model")
        page.fill("input[name=api_key]", "sk-browser-secret")
        page.click("text=Save the judge")
        page.wait_for_selector("text=Judge local-judge saved.")
        assert "stored encrypted" in page.inner_text("#judges")
        assert "sk-browser-secret" not in page.content()

        page.goto(f"{live_server.url}/projects/{project.pk}/judging/")
        assert "GOOD 0" in page.inner_text("#request-text")
        page.click("text=Send this request")
        page.wait_for_selector("#answer")
        assert "Winner A" in page.inner_text("#answer")

        page.select_option("#run-form select[name=judge]", label="local-judge")
        page.select_option("select[name=pairs]", "all")
        page.click("text=Queue the job")
        page.wait_for_selector("h1:has-text('Judging job')")
        assert "4 of 4 pairs labelled, 0 failed" in page.inner_text("#job-count")
        assert page.inner_text("#job-status") == "Succeeded"

    page.goto(f"{live_server.url}/projects/{project.pk}/dashboard/")
    judges = page.inner_text("#judges")
    assert "local-judge" in judges and "100.0%" in judges  # consistent in both orders
