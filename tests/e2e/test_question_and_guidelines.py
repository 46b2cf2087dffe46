"""The question a pair answers stays in view in the pairs table and on the review page, and
the labelling page shows its criteria and opens its guidelines without moving the answer."""

import pytest

from tests.e2e.conftest import wait_until
from tests.e2e.test_annotate import LONG_TURNS, box, log_in, wait_for_new_pair
from tests.factories import MembershipFactory, PairFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = [pytest.param((1366, 768), id="1366x768"), pytest.param((390, 844), id="390x844")]

NINE_TURNS = [
    {"role": "user" if n % 2 == 0 else "assistant", "content": f"Turn {n}. " + "Tides. " * 60}
    for n in range(8)
] + [{"role": "user", "content": "Which harbour is safest in a storm?"}]

# Whether an element lies wholly inside what the window and each of its clipping ancestors
# (a box that scrolls or hides its overflow) leave visible.
SHOWN_WHOLE = """el => {
  const r = el.getBoundingClientRect();
  let top = 0, left = 0, bottom = window.innerHeight, right = window.innerWidth;
  for (let box = el.parentElement; box; box = box.parentElement) {
    const style = getComputedStyle(box);
    if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
    const b = box.getBoundingClientRect();
    top = Math.max(top, b.top + box.clientTop); left = Math.max(left, b.left + box.clientLeft);
    bottom = Math.min(bottom, b.top + box.clientTop + box.clientHeight);
    right = Math.min(right, b.left + box.clientLeft + box.clientWidth);
  }
  return r.height > 0 && r.top >= top - 1 && r.bottom <= bottom + 1
    && r.left >= left - 1 && r.right <= right + 1;
}"""


@pytest.mark.parametrize("screen", SCREENS)
def test_the_last_question_is_in_view_in_the_table_and_on_the_review_page(
    live_server, page, screen
):
    width, height = screen
    page.set_viewport_size({"width": width, "height": height})
    membership = MembershipFactory(user__username="lee", role="lead")
    pair = PairFactory(project=membership.project, prompt=NINE_TURNS)
    log_in(page, live_server, "lee")

    page.goto(f"{live_server.url}/projects/{membership.project.pk}/#pairs")
    question = page.locator(".pair-table .question .turn-user", has_text="safest in a storm")
    question.scroll_into_view_if_needed()
    assert question.evaluate(SHOWN_WHOLE)
    fold = page.locator(".pair-table .earlier-turns summary")
    assert fold.inner_text() == "8 earlier turns"
    assert not page.is_visible(".pair-table .earlier-turns .turn")
    fold.click()  # the fold opens in place, without a script
    assert page.is_visible(".pair-table .earlier-turns .turn >> nth=0")

    page.goto(f"{live_server.url}/projects/{membership.project.pk}/pairs/{pair.pk}/")
    wait_until(page, "() => document.getElementById('decision-form').dataset.keys === 'on'")
    question = page.locator("#question .turn-user", has_text="safest in a storm")
    assert question.evaluate(SHOWN_WHOLE)  # on opening, with no scrolling
    assert page.locator("#conversation .earlier-turns summary").inner_text() == "8 earlier turns"


def open_labelling(page, live_server):
    page.set_viewport_size({"width": 1366, "height": 768})
    membership = MembershipFactory(user__username="kim")
    project = membership.project
    project.guidelines = "Prefer the **honest** answer.\n\n" + "Read both to the end. " * 80
    project.criteria = "Helpful\nHonest\nHarmless"
    project.save()
    for k in range(3):
        PairFactory(
            project=project,
            prompt=LONG_TURNS,
            response_a=f"Answer A{k}. " + "The moon pulls the sea. " * 200,
            response_b=f"Answer B{k}. " + "The sun pulls too. " * 200,
        )
    log_in(page, live_server, "kim")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    return wait_for_new_pair(page, "")


def answer_boxes(page) -> list[dict]:
    return [box(page, selector) for selector in (".answer", "[data-choice=left]", "#submit")]


def test_guidelines_open_over_the_pair_and_the_answer_stays_put(live_server, page):
    open_labelling(page, live_server)
    criteria = page.locator("#criteria")
    assert criteria.is_visible() and criteria.evaluate(SHOWN_WHOLE)
    assert criteria.inner_text() == "Criteria: Helpful · Honest · Harmless"
    before = answer_boxes(page)
    assert before[0]["bottom"] <= 768

    page.keyboard.press("g")
    assert page.is_visible("#guidelines") and "honest" in page.inner_text("#guidelines")
    assert answer_boxes(page) == before
    # The panel covers none of the answer: a click on Submit reaches Submit.
    submit = before[2]
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('#submit') !== null",
        [submit["x"] + submit["width"] / 2, submit["y"] + submit["height"] / 2],
    )
    assert hit
    page.keyboard.press("G")
    assert not page.is_visible("#guidelines")
    page.keyboard.press("g")
    page.keyboard.press("Escape")
    assert not page.is_visible("#guidelines")
    assert answer_boxes(page) == before


def tab_to(page, selector: str) -> None:
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_enter_on_a_focused_control_does_what_it_says(live_server, page):
    first = open_labelling(page, live_server)

    tab_to(page, "#guidelines-open")
    page.keyboard.press("Enter")
    assert page.is_visible("#guidelines")
    assert page.inner_text("#status") == ""  # not "Pick a side first"
    page.keyboard.press("Enter")
    assert not page.is_visible("#guidelines")

    tab_to(page, "#prompt .earlier")
    page.keyboard.press("Enter")
    assert page.locator("#prompt .turn").count() == 5
    tab_to(page, "[data-choice=left]")
    page.keyboard.press("Enter")
    assert page.locator("[data-choice=left].selected").count() == 1
    page.keyboard.press("2")
    tab_to(page, "#submit")
    page.keyboard.press("Enter")
    second = wait_for_new_pair(page, first)
    assert "Pick a side first" not in page.inner_text("#status")

    # A click leaves no focus behind: Enter after clicking an answer still submits the pair.
    page.click("[data-choice=right]")
    page.click("[data-strength='1']")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, second)
