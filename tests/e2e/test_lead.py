"""A lead's loop in a real headless Chromium: dashboard, decision, curation, download."""

import json

import pytest

from annotation.agreement.services import consensus_refresh
from annotation.models import Label, Membership, Pair
from annotation.pairs.search import pairs_search_index
from tests.e2e.conftest import wait_until
from tests.e2e.test_annotate import log_in
from tests.factories import MembershipFactory, PairFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_lead_reviews_decides_curates_and_downloads(live_server, page):
    lead = MembershipFactory(user__username="lee", role=Membership.Role.LEAD)
    project = lead.project
    pairs = PairFactory.create_batch(4, project=project)
    for pair in pairs[:3]:
        for source in ("vendor-x", "vendor-y"):
            Label.objects.create(pair=pair, source=source, choice="a", strength=2)
    Label.objects.create(pair=pairs[3], source="vendor-x", choice="a", strength=1)
    Label.objects.create(pair=pairs[3], source="vendor-y", choice="b", strength=1)
    consensus_refresh(pair_ids=[p.pk for p in pairs])

    log_in(page, live_server, "lee")
    page.click("text=Agreement")
    page.wait_for_selector("#health")
    assert "75.0%" in page.inner_text(".figures")  # three of four pairs agree

    page.click(f"tr:has-text('{pairs[3].external_id}') >> text=Review")
    page.check("input[name=choice][value=b]")
    page.fill("input[name=note]", "B answers the question")
    page.click("#decide")
    page.wait_for_selector(f"text=Decided #{pairs[3].pk}: b.")

    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/projects/{project.pk}/curate/")
    wait_until(page, "() => document.getElementById('keep-count').textContent === '4'")
    page.uncheck("input[name=difficulty][value=hard]")  # the decided pair is still hard
    wait_until(page, "() => document.getElementById('keep-count').textContent === '3'")
    for level in ("easy", "medium"):
        page.uncheck(f"input[name=difficulty][value={level}]")
    wait_until(page, "() => document.getElementById('keep-count').textContent === '0'")
    page.check("input[name=difficulty][value=hard]")  # the decided pair alone: one pair
    wait_until(page, "() => document.getElementById('keep-count').textContent === '1'")
    assert page.inner_text("#keep-noun") == "pair"
    for level in ("easy", "medium"):
        page.check(f"input[name=difficulty][value={level}]")
    wait_until(page, "() => document.getElementById('keep-count').textContent === '4'")
    assert page.inner_text("#keep-noun") == "pairs"
    page.fill("input[name=min_votes]", "3")
    wait_until(page, "() => document.getElementById('keep-count').textContent === '0'")
    assert "fewer votes than asked for: 4" in page.inner_text("#keep-detail")
    assert "--" not in page.inner_text("#keep-detail")
    page.fill("input[name=min_votes]", "1")
    wait_until(page, "() => document.getElementById('keep-count').textContent === '4'")
    page.fill("input[name=name]", "lead-cut")
    page.click("text=Create version")
    page.wait_for_selector("h1:has-text('lead-cut@v1')")
    assert console_errors == []  # the name field's pattern compiles in today's Chromium

    with page.expect_download() as download:
        page.click("text=JSONL")
    rows = [json.loads(line) for line in download.value.path().read_text().splitlines()]
    assert len(rows) == 4
    decided = next(r for r in rows if r["pair_id"] == pairs[3].external_id)
    assert decided["chosen"] == pairs[3].response_b  # the decision overrides the split vote


def on_pair(page, pair) -> None:
    """Until the review page of `pair` is open and its keys work."""
    page.wait_for_selector(f"h1:has-text('Pair #{pair.pk}')")
    page.wait_for_selector("#decision-form[data-keys=on]", state="attached")


def test_lead_searches_filters_and_decides_contested_pairs_by_keyboard(live_server, page):
    lead = MembershipFactory(user__username="lee", role=Membership.Role.LEAD)
    project = lead.project
    pairs = PairFactory.create_batch(4, project=project)
    pairs.append(PairFactory(project=project, response_a="Penguins **cannot** fly."))
    for pair in pairs[1:]:  # every pair but the first split one vote each way
        Label.objects.create(pair=pair, source="vendor-x", choice="a", strength=2)
        Label.objects.create(pair=pair, source="vendor-y", choice="b", strength=2)
    consensus_refresh(pair_ids=[p.pk for p in pairs])
    pairs_search_index()  # a worker's part, moments after pairs are written
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "lee")
    page.goto(f"{live_server.url}/projects/{project.pk}/")

    page.fill("#pair-search", "penguins")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=1 pair matches")
    assert page.inner_html(".pair-table tbody strong") == "cannot"  # rendered, not raw

    page.fill("#pair-search", "")
    page.select_option("select[name=contested]", "true")
    page.select_option("select[name=decided]", "false")
    page.click("#pair-filters button")
    page.wait_for_selector("text=4 pairs match")
    page.click(".pair-table tbody tr:first-child .pair-link")
    on_pair(page, pairs[1])

    page.keyboard.press("b")
    page.keyboard.press("Enter")  # records B and opens the next contested, undecided pair
    on_pair(page, pairs[2])
    assert f"Decided #{pairs[1].pk}: b." in page.inner_text(".flash")
    page.fill("input[name=note]", "both half right")  # typed keys stay in the note
    assert page.input_value("input[name=note]") == "both half right"
    page.keyboard.press("Escape")  # leaves the note: the keys work again
    assert page.evaluate("() => document.activeElement.name") != "note"
    page.keyboard.press("n")
    on_pair(page, pairs[3])
    page.keyboard.press("p")
    on_pair(page, pairs[2])
    page.keyboard.press("p")  # the decided pair left the filter: previous skips it
    page.wait_for_selector("text=the first pair")
    assert f"Pair #{pairs[2].pk}" in page.inner_text("h1")
    page.keyboard.press("g")
    page.wait_for_selector("text=3 pairs match")  # back to the table, filters kept
    assert Label.objects.count() == 8 and pairs[1].adjudication.choice == "b"


def test_a_curated_export_imports_back_through_the_page(live_server, page, tmp_path):
    """A version of chat pairs (TRL's conversational rows), downloaded from its page and
    uploaded on another project's import form at 1366x768, arrives whole and labelled."""
    from annotation.curation.selection import CurationFilters
    from annotation.curation.services import dataset_curate

    lead = MembershipFactory(user__username="lee", role=Membership.Role.LEAD)
    other = MembershipFactory(user=lead.user, role=Membership.Role.LEAD).project
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Name a fruit."}]  # fmt: skip
    pairs = PairFactory.create_batch(3, project=lead.project, prompt=chat)
    for pair in pairs:
        Label.objects.create(pair=pair, source="vendor-x", choice="b", strength=2)
    consensus_refresh(pair_ids=[p.pk for p in pairs])
    dataset = dataset_curate(project=lead.project, name="chats", user=None,
                             filters=CurationFilters(test_fraction=0.0))  # fmt: skip
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "lee")
    page.goto(f"{live_server.url}/datasets/{dataset.identifier}/")
    with page.expect_download() as download:
        page.click("text=JSONL")
    saved = tmp_path / download.value.suggested_filename  # as the browser names it
    download.value.save_as(saved)
    assert (
        saved.suffix == ".jsonl" and json.loads(saved.read_text().splitlines()[0])["prompt"] == chat
    )

    page.goto(f"{live_server.url}/projects/{other.pk}/")
    page.set_input_files("input[name=file]", str(saved))
    page.click(".import-form button")
    page.wait_for_selector("text=Import done: imported 3")
    back = Pair.objects.filter(project=other).order_by("id")
    assert [p.prompt for p in back] == [chat] * 3
    labels = Label.objects.filter(pair__project=other).select_related("pair")
    assert {label.pair.response(label.choice) for label in labels} == {p.response_b for p in pairs}
