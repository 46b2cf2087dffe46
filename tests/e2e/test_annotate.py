"""The annotator's loop in a real headless Chromium."""

import pytest

from annotation.models import Label
from tests.e2e.conftest import wait_until
from tests.factories import PASSWORD, MembershipFactory, PairFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Projects')")


def wait_for_new_pair(page, previous: str) -> str:
    wait_until(
        page,
        "prev => { const v = document.getElementById('annotator').dataset.assignment;"
        " return v && v !== prev; }",
        arg=previous,
    )
    return page.eval_on_selector("#annotator", "el => el.dataset.assignment")


def test_annotator_labels_three_pairs_by_keyboard(live_server, page):
    membership = MembershipFactory(user__username="kim")
    project = membership.project
    PairFactory.create_batch(3, project=project)

    log_in(page, live_server, "kim")
    assert "Start labelling" in page.content()
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")

    assignment = ""
    answers = [
        ("ArrowLeft", "3", "left"),
        ("ArrowRight", "1", "right"),
        ("ArrowDown", None, "tie"),
    ]
    for key, strength, _ in answers:
        assignment = wait_for_new_pair(page, assignment)
        page.keyboard.press(key)
        if strength:
            page.keyboard.press(strength)
        if key == "ArrowRight":
            page.keyboard.press("r")
            page.keyboard.type("Right one cites a source.")
            page.keyboard.press("Escape")
        page.keyboard.press("Enter")

    page.wait_for_selector("#done", state="visible")
    wait_until(
        page,
        "() => document.getElementById('progress-text').textContent"
        " === '3 labelled today · 0 remaining'",
    )

    labels = list(Label.objects.filter(annotator=membership.user).order_by("created_at"))
    assert len(labels) == 3
    for label, (_, strength, screen) in zip(labels, answers, strict=True):
        if screen == "tie":
            assert (label.choice, label.strength) == ("tie", None)
        else:
            shown_right = "b" if label.shown_left == "a" else "a"
            assert label.choice == (label.shown_left if screen == "left" else shown_right)
            assert label.strength == int(strength)
        assert label.shown_left in ("a", "b")
        assert label.duration_ms is not None and label.duration_ms >= 0
    assert labels[1].rationale == "Right one cites a source."


def test_script_in_a_response_does_not_run(live_server, page):
    membership = MembershipFactory(user__username="kim")
    PairFactory(
        project=membership.project,
        prompt="Show me <img src=x onerror=\"window.__pwned='prompt'\">",
        response_a="<script>window.__pwned = 'script'</script>Plain **bold**",
        response_b=(
            '<img src="x" onerror="window.__pwned=\'onerror\'"> [link](javascript:window.__pwned=1)'
        ),
    )
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, live_server, "kim")
    page.goto(f"{live_server.url}/projects/{membership.project.pk}/annotate/")
    wait_for_new_pair(page, "")
    page.wait_for_timeout(300)  # time for any injected handler to fire

    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    text = page.inner_text("#pair")
    assert "<script>window.__pwned = 'script'</script>" in text  # shown as text, inert
    assert page.locator("#pair strong", has_text="bold").count() == 1  # Markdown still renders
    assert page.locator("#pair script").count() == 0
    assert page.locator("#pair [onerror]").count() == 0
    assert page.locator("#pair a[href^='javascript']").count() == 0
