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


LONG_TURNS = [
    {"role": "user", "content": "Tell me about tides. " * 40},
    {"role": "assistant", "content": "Tides follow the moon. " * 40},
    {"role": "user", "content": "And the sun? " * 30},
    {"role": "assistant", "content": "It adds spring and neap tides. " * 30},
    {"role": "user", "content": "Which matters more for a harbour?"},
]


def box(page, selector: str) -> dict:
    return page.eval_on_selector(selector, "el => el.getBoundingClientRect().toJSON()")


def label_long_pairs(page, live_server, n: int):
    """n pairs with the five-turn prompt and long responses, and their annotator on the
    labelling page: (membership, the first assignment's id)."""
    membership = MembershipFactory(user__username="kim")
    for k in range(n):
        PairFactory(
            project=membership.project,
            prompt=LONG_TURNS,
            response_a=f"Answer A{k}. " + "The moon pulls the sea. " * 200,
            response_b=f"Answer B{k}. " + "The sun pulls too. " * 200,
        )
    log_in(page, live_server, "kim")
    page.goto(f"{live_server.url}/projects/{membership.project.pk}/annotate/")
    return membership, wait_for_new_pair(page, "")


def test_laptop_screen_by_keyboard_with_back(live_server, page):
    """1366x768, a five-turn prompt and long responses: both responses start on screen, the
    answer panel covers neither, every key works after Ctrl+Enter, and Backspace goes back
    to change the last answer."""
    page.set_viewport_size({"width": 1366, "height": 768})
    membership, first = label_long_pairs(page, live_server, 3)

    # Only the last user turn shows, the rest one key away.
    assert page.locator("#prompt .turn").count() == 1
    page.keyboard.press("c")
    assert page.locator("#prompt .turn").count() == 5
    page.keyboard.press("c")
    # Both responses start on screen; the answer panel sits below them, inside the window.
    for side in ("#left-body", "#right-body"):
        assert box(page, side)["top"] < 768 * 0.6
    answer = box(page, ".answer")
    assert answer["bottom"] <= 768
    assert answer["top"] >= max(box(page, "#left")["bottom"], box(page, "#right")["bottom"]) - 1
    # J scrolls both responses, not the page.
    page.keyboard.press("j")
    wait_until(page, "() => document.getElementById('left-body').scrollTop > 0")
    assert page.evaluate("window.scrollY") == 0

    # The keys overlay.
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")

    # Answer with a rationale and Ctrl+Enter: the next pair takes the keys at once.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("2")
    page.keyboard.press("r")
    page.keyboard.type("Cites the moon.")
    page.keyboard.press("Control+Enter")
    second = wait_for_new_pair(page, first)
    assert page.evaluate("document.activeElement.id") != "rationale"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    third = wait_for_new_pair(page, second)
    assert Label.objects.filter(annotator=membership.user).count() == 2

    # Backspace: the second pair again, with its answer; change it and return.
    page.keyboard.press("Backspace")
    wait_for_new_pair(page, third)
    assert page.eval_on_selector("#annotator", "el => el.dataset.assignment") == second
    assert page.is_visible("#revisit")
    assert page.locator("[data-choice=right].selected").count() == 1
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, second)
    assert page.eval_on_selector("#annotator", "el => el.dataset.assignment") == third
    assert not page.is_visible("#revisit")
    changed = Label.objects.get(assignment_id=int(second))
    assert changed.choice == changed.shown_left and changed.strength == 3
    assert Label.objects.filter(annotator=membership.user).count() == 2


def test_phone_screen_by_touch(live_server, page):
    """390x844, the same long pair: the responses stack, both start on screen, the answer
    panel covers neither and fits the width, and taps label the pair."""
    page.set_viewport_size({"width": 390, "height": 844})
    membership, first = label_long_pairs(page, live_server, 2)

    left, right = box(page, "#left"), box(page, "#right")
    assert right["top"] >= left["bottom"] - 1  # stacked, one above the other
    for side in (left, right):
        assert side["top"] < 844 and side["right"] <= 390 + 1
    answer = box(page, ".answer")
    assert answer["top"] >= right["bottom"] - 1 and answer["right"] <= 390 + 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll

    page.click("[data-choice=left]")
    page.click("[data-strength='2']")
    page.click("#submit")
    wait_for_new_pair(page, first)
    label = Label.objects.get(annotator=membership.user)
    assert label.choice == label.shown_left and label.strength == 2


def shown_assignment(page) -> str:
    return page.eval_on_selector("#annotator", "el => el.dataset.assignment")


def test_going_back_two_and_three_steps_by_keyboard(live_server, page):
    """Back is absent until a pair is answered; Backspace then goes back through every pair
    answered, in order, each shown with its answer; Enter saves a change and goes forward,
    and Esc returns to the live pair with its unsent answer."""
    page.set_viewport_size({"width": 1366, "height": 768})
    membership = MembershipFactory(user__username="kim")
    PairFactory.create_batch(4, project=membership.project)
    log_in(page, live_server, "kim")
    page.goto(f"{live_server.url}/projects/{membership.project.pk}/annotate/")

    ids = [wait_for_new_pair(page, "")]
    assert not page.is_visible("#back")
    page.keyboard.press("Backspace")  # nothing to go back to: the pair stays
    assert shown_assignment(page) == ids[0] and not page.is_visible("#revisit")
    for keys in (("ArrowLeft", "3"), ("ArrowRight", "1"), ("ArrowDown",)):
        for key in keys:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        ids.append(wait_for_new_pair(page, ids[-1]))
    assert page.is_visible("#back")
    page.keyboard.press("ArrowLeft")  # an answer to the live pair, not sent yet

    # Three steps back, in order, each with its answer; then no further.
    for steps, (shown, selected) in enumerate(
        [(ids[2], "tie"), (ids[1], "right"), (ids[0], "left")], start=1
    ):
        page.keyboard.press("Backspace")
        wait_until(page, "id => document.getElementById('annotator').dataset.assignment === id",
                   shown)  # fmt: skip
        assert page.locator(f"[data-choice={selected}].selected").count() == 1
        assert ("your last answer" if steps == 1 else f"{steps} pairs back") in page.inner_text(
            "#revisit"
        )
    assert page.locator("[data-strength='3'].selected").count() == 1
    assert not page.is_visible("#back")
    page.keyboard.press("Backspace")
    assert shown_assignment(page) == ids[0]

    # Change the first answer: Enter saves it and goes forward, one pair at a time.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("0")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, ids[0])
    assert shown_assignment(page) == ids[1]
    page.keyboard.press("Enter")  # unchanged: nothing sent, one more forward
    wait_for_new_pair(page, ids[1])
    assert shown_assignment(page) == ids[2]
    page.keyboard.press("Escape")
    wait_for_new_pair(page, ids[2])
    assert shown_assignment(page) == ids[3] and not page.is_visible("#revisit")
    assert page.locator("[data-choice=left].selected").count() == 1  # the unsent answer kept

    # Two steps back, change that one, and forward twice to the live pair.
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    wait_until(page, "id => document.getElementById('annotator').dataset.assignment === id",
               ids[1])  # fmt: skip
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, ids[1])
    assert shown_assignment(page) == ids[2]
    page.keyboard.press("Enter")
    wait_for_new_pair(page, ids[2])
    assert shown_assignment(page) == ids[3]

    labels = {str(label.assignment_id): label for label in Label.objects.all()}
    assert len(labels) == 3
    first = labels[ids[0]]
    assert first.choice != first.shown_left and first.strength == 0
    assert (labels[ids[1]].choice, labels[ids[1]].strength) == ("tie", None)
    assert labels[ids[2]].choice == "tie"
