"""Queue priority after make_pairs, in a real headless Chromium: a new round's pairs come
before an older imported backlog, on the lead's settings page and in the annotator's queue,
until the lead moves the backlog above the round; paused, the backlog is passed over."""

import json

import pytest
from django.core.management import call_command

from annotation.models import Membership
from tests.e2e.conftest import checked_page
from tests.e2e.test_annotate import log_in, wait_for_new_pair
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BACKLOG = 30
ROUND_PROMPTS = 3


@pytest.fixture
def annotator_page(browser):
    yield from checked_page(browser)


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.fixture
def backlog_then_round(tmp_path):
    """A project labelled once per pair, with an imported backlog of older unlabelled pairs,
    then round r2 of policy outputs imported and paired by the commands a lead runs. The
    random strategy is the one that needs no reward model; make_pairs queues its pairs
    exactly as with the others."""
    project = ProjectFactory(name="Helpfulness", annotators_per_pair=1)
    MembershipFactory(project=project, user__username="lea", role=Membership.Role.LEAD)
    MembershipFactory(project=project, user__username="kim")
    backlog = [
        {"prompt": f"Backlog question {i}: how do tides work?",
         "response_a": f"Backlog answer A{i}.", "response_b": f"Backlog answer B{i}."}
        for i in range(BACKLOG)
    ]  # fmt: skip
    call_command("import_pairs", project.name, write_jsonl(tmp_path / "backlog.jsonl", backlog))
    outputs = [
        {"prompt": f"Round r2 question {i}: which harbour is safest in a storm?",
         "responses": [f"Round r2 answer {i}, the policy's first try.",
                       f"Round r2 answer {i}, the policy's second try."]}
        for i in range(ROUND_PROMPTS)
    ]  # fmt: skip
    candidates = write_jsonl(tmp_path / "r2.jsonl", outputs)
    call_command("import_candidates", project.name, candidates, "--round", "r2")
    call_command("make_pairs", project.name, "--round", "r2", "--strategy", "random")
    return project


def queue_order(page) -> list[tuple[str, str]]:
    """The Order of the queue as the settings page shows it: (the work, its unlabelled
    pairs) per place, highest first."""
    rows = page.eval_on_selector_all(
        "#precedence tbody tr",
        "rows => rows.map(row => [row.cells[1].innerText, row.cells[2].innerText])",
    )
    return [(work.replace(" by default", "").strip(), count.strip()) for work, count in rows]


def shown_pair(page) -> str:
    return page.inner_text("#prompt") + "\n" + page.inner_text(".responses")


def answer_left(page, previous: str) -> str:
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    return wait_for_new_pair(page, previous)


def test_a_rounds_pairs_come_first_until_the_lead_moves_the_backlog_up(
    live_server, page, annotator_page, backlog_then_round
):
    project = backlog_then_round
    settings_url = f"{live_server.url}/projects/{project.pk}/settings/"

    # (a) The lead finds the order from the project's page: the round above the backlog.
    log_in(page, live_server, "lea")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    page.click("nav.subnav >> text=Order of the queue")
    page.wait_for_selector("#precedence h2:has-text('Order of the queue')")
    assert queue_order(page) == [("round r2", "3"), ("source backlog.jsonl", "30")]

    # (b) The annotator is given the round's pairs, not the backlog's.
    annotator = annotator_page
    log_in(annotator, live_server, "kim")
    annotator.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    assignment = wait_for_new_pair(annotator, "")
    first, first_prompt = shown_pair(annotator), annotator.inner_text("#prompt")
    assert "Round r2 question" in first and "Round r2 answer" in first
    assert "Backlog" not in first
    assignment = answer_left(annotator, assignment)
    second = shown_pair(annotator)
    assert "Round r2 question" in second and "Backlog" not in second
    assert annotator.inner_text("#prompt") != first_prompt  # another of the round's pairs

    # One round pair labelled and one on the annotator's screen: one round pair is left open.
    page.goto(settings_url)
    assert queue_order(page) == [("round r2", "1"), ("source backlog.jsonl", "30")]

    # (c) The lead moves the backlog above the round.
    page.click("#precedence button[aria-label='Move backlog.jsonl up']")
    page.wait_for_selector("text=The source backlog.jsonl is moved up.")
    assert queue_order(page) == [("source backlog.jsonl", "30"), ("round r2", "1")]

    # The pair already on the annotator's screen stays theirs; the next one is the backlog's.
    assignment = answer_left(annotator, assignment)
    third = shown_pair(annotator)
    assert "Backlog question" in third and "Backlog answer" in third
    assert "Round r2" not in third
    assignment = answer_left(annotator, assignment)
    assert "Backlog question" in shown_pair(annotator)

    # One backlog pair labelled and one on screen; the round's last pair still waits.
    page.reload()
    assert queue_order(page) == [("source backlog.jsonl", "28"), ("round r2", "1")]

    # Paused, the backlog is passed over: after the pair on screen comes the round's last.
    page.click("#place-source-1 button:has-text('Pause')")
    page.wait_for_selector("text=The source backlog.jsonl is paused.")
    assert queue_order(page) == [("source backlog.jsonl", "28 paused"), ("round r2", "1")]
    answer_left(annotator, assignment)
    assert "Round r2 question" in shown_pair(annotator)
    page.reload()
    assert queue_order(page) == [("source backlog.jsonl", "28 paused"), ("round r2", "0")]
