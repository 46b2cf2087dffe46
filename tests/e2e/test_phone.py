"""Labelling on a phone, by touch, in a real headless Chromium emulating one."""

import pytest

from annotation.models import Label
from tests.e2e.conftest import checked_page
from tests.e2e.test_annotate import LONG_TURNS, log_in, wait_for_new_pair
from tests.factories import MembershipFactory, PairFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FINGER = 44  # px: the smallest target a thumb hits without aiming

PHONES = [pytest.param((390, 844), id="390x844"), pytest.param((360, 740), id="360x740")]


@pytest.fixture
def phone(browser, request):
    """A touch page of the size the test is parametrised with, failing its test if the
    site's Content-Security-Policy blocked anything."""
    width, height = request.param
    viewport = {"width": width, "height": height}
    yield from checked_page(browser, viewport=viewport, has_touch=True, is_mobile=True)


def no_sideways_scroll(page) -> bool:
    width = page.viewport_size["width"]
    return page.evaluate(
        "w => window.innerWidth === w && document.documentElement.scrollWidth <= w", width
    )


STACKED = """() => document.getElementById('right').getBoundingClientRect().top
  >= document.getElementById('left').getBoundingClientRect().bottom - 1"""

PANEL = """id => {
  const panel = document.getElementById(id), body = panel.querySelector('.body');
  const r = panel.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height,
    covered: !panel.contains(hit), shown: body.clientHeight, content: body.scrollHeight,
    scrolls: body.scrollHeight > body.clientHeight
      && ['auto', 'scroll'].includes(getComputedStyle(body).overflowY)};
}"""


def response_panel(page, side: str) -> dict:
    """The panel's geometry once scrolled into view, as a person would see it."""
    page.locator(f"#{side}").scroll_into_view_if_needed()
    return page.evaluate(PANEL, side)


def assert_readable(page) -> None:
    """The prompt and both responses readable one above the other, none covered, no
    sideways scroll, and every answering control a finger's size."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    assert no_sideways_scroll(page)
    prompt = page.locator("#prompt").bounding_box()
    assert prompt["width"] >= width * 0.8 and prompt["height"] >= 40
    panels = [response_panel(page, side) for side in ("left", "right")]
    for panel in panels:
        assert panel["top"] >= 0 and panel["bottom"] <= height + 1  # wholly on screen
        assert panel["left"] >= 0 and panel["right"] <= width
        assert panel["height"] >= height / 3 or panel["scrolls"]
        assert panel["shown"] >= min(panel["content"], height / 4)  # text shows, not 0 px
        assert not panel["covered"]
    assert page.evaluate(STACKED)
    targets = page.locator("[data-choice], button[data-strength], #submit")
    for i in range(targets.count()):
        target = targets.nth(i)
        target.scroll_into_view_if_needed()
        found = target.bounding_box()
        assert found["height"] >= FINGER and found["width"] >= FINGER, target
        assert found["x"] >= 0 and found["x"] + found["width"] <= width


def tap_answer(page, choice: str, strength: str | None) -> None:
    page.locator(f"[data-choice={choice}]").tap()
    if strength is not None:
        page.locator(f"[data-strength='{strength}']").tap()
    page.locator("#submit").tap()


def pairs_of_every_shape(project) -> None:
    """Long responses, short ones, and a long conversation with long responses."""
    PairFactory(
        project=project,
        response_a="The moon pulls the sea. " * 200,
        response_b="The sun pulls too. " * 200,
    )
    PairFactory(project=project, response_a="Yes.", response_b="No, and here is why.")
    PairFactory(
        project=project,
        prompt=LONG_TURNS,
        response_a="```python\n" + "x = [" + "1, " * 300 + "]\n```",
        response_b="Spring tides. " * 300,
    )


ANSWERS = [("left", "2"), ("right", "0"), ("tie", None)]


@pytest.mark.parametrize("phone", PHONES, indirect=True)
def test_three_pairs_labelled_by_touch_each_readable(live_server, phone):
    membership = MembershipFactory(user__username="kim", user__is_staff=True)
    pairs_of_every_shape(membership.project)
    log_in(phone, live_server, "kim")
    phone.goto(f"{live_server.url}/projects/{membership.project.pk}/annotate/")

    shown = ""
    for n, (choice, strength) in enumerate(ANSWERS):
        shown = wait_for_new_pair(phone, shown)
        if n == 0:
            assert not phone.is_visible("#back")  # nothing to go back to yet
        assert_readable(phone)
        tap_answer(phone, choice, strength)
    phone.wait_for_selector("#done", state="visible")

    labels = list(Label.objects.filter(annotator=membership.user).order_by("created_at"))
    assert len(labels) == 3
    for label, (choice, strength) in zip(labels, ANSWERS, strict=True):
        if choice == "tie":
            assert (label.choice, label.strength) == ("tie", None)
        else:
            shown_right = "b" if label.shown_left == "a" else "a"
            assert label.choice == (label.shown_left if choice == "left" else shown_right)
            assert label.strength == int(strength)


SIDE_BY_SIDE = """() => {
  const l = document.getElementById('left').getBoundingClientRect();
  const r = document.getElementById('right').getBoundingClientRect();
  return Math.abs(l.top - r.top) < 1 && r.left >= l.right;
}"""


@pytest.mark.parametrize("phone", [pytest.param((844, 390), id="844x390")], indirect=True)
def test_a_phone_held_sideways_shows_both_responses_side_by_side(live_server, phone):
    """Landscape: the responses side by side and, scrolled to, both wholly on the screen and
    most of its height, each scrolling on its own; the answer below them, finger-sized."""
    membership = MembershipFactory(user__username="kim", user__is_staff=True)
    pairs_of_every_shape(membership.project)
    log_in(phone, live_server, "kim")
    phone.goto(f"{live_server.url}/projects/{membership.project.pk}/annotate/")
    height = phone.viewport_size["height"]
    shown = ""
    for choice, strength in ANSWERS:
        shown = wait_for_new_pair(phone, shown)
        assert no_sideways_scroll(phone) and phone.evaluate(SIDE_BY_SIDE)
        for panel in (response_panel(phone, side) for side in ("left", "right")):
            assert panel["top"] >= 0 and panel["bottom"] <= height + 1
            assert panel["height"] >= height * 0.8 and not panel["covered"]
            assert panel["shown"] >= min(panel["content"], height / 2)
        targets = phone.locator("[data-choice], button[data-strength], #submit")
        for i in range(targets.count()):
            targets.nth(i).scroll_into_view_if_needed()
            found = targets.nth(i).bounding_box()
            assert found["height"] >= FINGER and found["width"] >= FINGER
        tap_answer(phone, choice, strength)
    phone.wait_for_selector("#done", state="visible")
    assert Label.objects.filter(annotator=membership.user).count() == 3


@pytest.mark.parametrize("phone", PHONES, indirect=True)
def test_the_menu_folds_and_tables_scroll_in_their_own_box(live_server, phone):
    membership = MembershipFactory(user__username="kim", user__is_staff=True)
    PairFactory(project=membership.project, external_id="a-rather-long-pair-name-" * 3)
    Label.objects.create(
        pair=membership.project.pairs.get(),
        annotator=membership.user,
        choice="a",
        strength=2,
        rationale="Cites the tide tables of the harbour master, which the other ignores.",
        duration_ms=5_000,
        shown_left="a",
    )
    log_in(phone, live_server, "kim")
    assert no_sideways_scroll(phone)
    assert not phone.is_visible("nav >> text=My labels")

    phone.locator(".menu-button").tap()
    links = phone.locator(".topbar nav > a")
    assert links.count() >= 3  # an admin's whole menu
    width = phone.viewport_size["width"]
    for i in range(links.count()):
        found = links.nth(i).bounding_box()
        assert found["height"] >= FINGER and found["x"] + found["width"] <= width
    assert no_sideways_scroll(phone)

    phone.locator("nav >> text=My labels").tap()
    phone.wait_for_selector("h1:has-text('My labels')")
    assert no_sideways_scroll(phone)
    table = phone.evaluate(
        """() => { const t = document.querySelector('table.pairs');
        return {scrolls: t.scrollWidth > t.clientWidth, overflow: getComputedStyle(t).overflowX,
          right: t.getBoundingClientRect().right}; }"""
    )
    assert table["scrolls"] and table["overflow"] == "auto"
    assert table["right"] <= width


@pytest.mark.parametrize("phone", [PHONES[0]], indirect=True)
def test_going_back_two_steps_by_touch_and_changing_an_answer(live_server, phone):
    membership = MembershipFactory(user__username="kim")
    pairs_of_every_shape(membership.project)
    log_in(phone, live_server, "kim")
    phone.goto(f"{live_server.url}/projects/{membership.project.pk}/annotate/")
    ids = []
    for choice, strength in ANSWERS:
        ids.append(wait_for_new_pair(phone, ids[-1] if ids else ""))
        tap_answer(phone, choice, strength)
    phone.wait_for_selector("#done", state="visible")

    # From the end of the queue: the last pair, then the one before, with their answers.
    phone.locator("#done-back").tap()
    wait_for_new_pair(phone, "")
    assert phone.eval_on_selector("#annotator", "el => el.dataset.assignment") == ids[2]
    assert phone.locator("[data-choice=tie].selected").count() == 1
    phone.locator("#back").tap()
    wait_for_new_pair(phone, ids[2])
    assert phone.eval_on_selector("#annotator", "el => el.dataset.assignment") == ids[1]
    assert phone.locator("[data-choice=right].selected").count() == 1
    assert "2 pairs back" in phone.inner_text("#revisit")
    assert_readable(phone)

    tap_answer(phone, "left", "3")  # saves it and goes forward, to the last pair
    wait_for_new_pair(phone, ids[1])
    assert phone.eval_on_selector("#annotator", "el => el.dataset.assignment") == ids[2]
    phone.locator("#return").tap()
    phone.wait_for_selector("#done", state="visible")

    changed = Label.objects.get(assignment_id=int(ids[1]))
    assert (changed.choice, changed.strength) == (changed.shown_left, 3)
    assert Label.objects.get(assignment_id=int(ids[2])).choice == "tie"
    assert Label.objects.filter(annotator=membership.user).count() == 3
