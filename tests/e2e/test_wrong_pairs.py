"""The wrong-pairs list of an evaluation in a real headless Chromium: a lead reads the most
confident mistakes first, narrows them by difficulty and by length, pages through them and
opens a pair's votes; an annotator of the project gets no such page."""

import re
from types import SimpleNamespace

import numpy as np
import pytest

from annotation.agreement.services import consensus_refresh
from annotation.curation.selection import CurationFilters
from annotation.curation.selectors import dataset_rows
from annotation.curation.services import dataset_curate
from annotation.models import Label, Membership
from rewardmodels.evaluation.services import evaluation_create
from rewardmodels.models import EvaluationRun, RewardModel
from tests.e2e.conftest import checked_page
from tests.e2e.test_annotate import log_in
from tests.factories import MembershipFactory, PairFactory, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

N_PAIRS = 60
VOTERS = ("ann", "bob", "cat")
DIFFICULTY = ("easy", "medium", "hard")  # of pair i: DIFFICULTY[i % 3], by its votes


@pytest.fixture
def annotator_page(browser):
    yield from checked_page(browser)


def chosen_longer(i: int) -> bool:
    return i % 4 == 0


def model_is_wrong(i: int) -> bool:
    return i % 5 != 4


def reward_gap(i: int) -> float:
    """The model's reward of pair i's chosen response minus its rejected one's: negative
    (a mistake) for most pairs, in an order unlike the pairs' own."""
    return -0.1 - ((i * 37) % N_PAIRS) / 20 if model_is_wrong(i) else 1.0


class GivenScorer:
    """A reward model that gives each response the reward planned for it, and reads as many
    tokens as it has words: the evaluation runs as a worker runs it, without a model."""

    def __init__(self, rewards: dict[str, float]):
        self.given = rewards

    def encode(self, prompts, responses):
        return [
            SimpleNamespace(text=text, response_tokens=len(text.split()), truncated=False)
            for text in responses
        ]

    def rewards(self, sequences, progress=None):
        return np.array([self.given[s.text] for s in sequences])


@pytest.fixture
def evaluation(monkeypatch, eager):
    """Project Helpfulness with 60 pairs that three people all voted A on (easy, medium and
    hard by the strength of their votes; hard ones with one dissent), curated into a version
    with most pairs in its test split, and a model evaluated on it that gets four in five of
    them wrong. Nothing is trained: the evaluation job runs inline on a scorer that gives the
    planned rewards (as tests/rewardmodels/test_api.py gives a try-out page its rewards)."""
    from workers.ml import scoring

    project = ProjectFactory(name="Helpfulness")
    MembershipFactory(project=project, user__username="lea", role=Membership.Role.LEAD)
    voters = [MembershipFactory(project=project, user__username=name).user for name in VOTERS]
    rewards, pairs = {}, {}
    for i in range(N_PAIRS):
        long_text = " and a careful reason why" * 8
        chosen = f"Chosen answer {i:02d}" + (long_text if chosen_longer(i) else ".")
        rejected = f"Rejected answer {i:02d}" + ("." if chosen_longer(i) else long_text)
        pair = PairFactory(
            project=project, external_id=f"q{i:02d}", response_a=chosen, response_b=rejected,
            prompt=f"Question {i:02d}: which harbour is safest in a storm?",
        )  # fmt: skip
        for n, voter in enumerate(voters):
            dissent = DIFFICULTY[i % 3] == "hard" and n == 2
            Label.objects.create(
                pair=pair, annotator=voter, choice="b" if dissent else "a", shown_left="a",
                strength={"easy": 3, "medium": 1, "hard": 0}[DIFFICULTY[i % 3]],
            )  # fmt: skip
        rewards[chosen], rewards[rejected] = 0.0, -reward_gap(i)
        pairs[pair.external_id] = (i, pair)
    consensus_refresh(pair_ids=[pair.pk for _, pair in pairs.values()])
    dataset = dataset_curate(
        project=project, name="votes", filters=CurationFilters(test_fraction=0.9), user=None
    )
    model = RewardModel.objects.create(
        identifier="rm-votes", project=project, dataset=dataset, base_model="minilm",
        artifact="/models/rm-votes",
    )  # fmt: skip
    monkeypatch.setattr(scoring, "scorer_for", lambda path, **_: GivenScorer(rewards))
    job = evaluation_create(reward_model=model, user=None, dataset=dataset)
    job.refresh_from_db()
    assert job.status == EvaluationRun.Status.SUCCEEDED, job.error
    tested = [pairs[row["pair_id"]] for row in dataset_rows(dataset) if row["split"] == "test"]
    # The mistakes the page should list, the most confident first.
    wrong = sorted((reward_gap(i), i, pair) for i, pair in tested if model_is_wrong(i))
    return SimpleNamespace(job=job, project=project, n_tested=len(tested), wrong=wrong)


def listed(page) -> list[dict]:
    """The rows of the wrong-pairs table as shown: the pair, its question, its gap, its
    difficulty and whether the chosen response was the longer."""
    rows = page.eval_on_selector_all(
        "#wrong-table tr.wrong-pair",
        "rows => rows.map(row => Array.from(row.cells, cell => cell.innerText))",
    )
    return [
        {"pair": cells[0], "question": cells[1], "gap": float(cells[5]),
         "difficulty": cells[6], "longer": "chosen longer" in cells[7]}
        for cells in rows
    ]  # fmt: skip


def expected(wrong, *, difficulty=None, longer=None) -> list[dict]:
    return [
        {"pair": f"#{pair.pk}", "question": pair.prompt, "gap": round(gap, 3),
         "difficulty": DIFFICULTY[i % 3], "longer": chosen_longer(i)}
        for gap, i, pair in wrong
        if difficulty in (None, DIFFICULTY[i % 3]) and longer in (None, chosen_longer(i))
    ]  # fmt: skip


def filter_by(page, difficulty: str, longer: str) -> None:
    page.select_option("#wrong_difficulty", label=difficulty)
    page.select_option("#wrong_longer", label=longer)
    with page.expect_navigation():
        page.click("#wrong-filters button:has-text('Show')")


def test_a_lead_reads_the_most_confident_mistakes_first_and_opens_one(
    live_server, page, evaluation
):
    wrong, url = evaluation.wrong, f"{live_server.url}/evaluations/{evaluation.job.pk}/"
    assert len(wrong) > 25  # more than a page
    log_in(page, live_server, "lea")
    page.goto(url)
    section = page.locator("#wrong-pairs")
    assert section.locator("h2").inner_text() == "What the model got wrong"
    assert page.inner_text("#wrong-count") == f"{len(wrong)} wrong pairs of {evaluation.n_tested}."

    # The most confident mistake first, then less and less confident ones, 25 a page.
    first_page = listed(page)
    assert first_page == expected(wrong)[:25]
    assert first_page[0]["question"] == wrong[0][2].prompt
    assert [row["gap"] for row in first_page] == sorted(row["gap"] for row in first_page)
    pager = section.locator("nav.pager")
    assert "Page 1 of 2" in pager.inner_text()
    pager.locator("a[rel=next]").click()
    page.wait_for_selector("nav.pager a[rel=prev]")
    assert "Page 2 of 2" in page.inner_text("#wrong-pairs nav.pager")
    assert listed(page) == expected(wrong)[25:]

    # The filters narrow the list (and keep the query on the next page's link).
    filter_by(page, "hard", "longer or not")
    hard = expected(wrong, difficulty="hard")
    assert 0 < len(hard) < len(wrong)
    assert page.inner_text("#wrong-count") == f"{len(hard)} of the {len(wrong)} wrong pairs match."
    assert listed(page) == hard
    assert page.locator("#wrong-pairs nav.pager").count() == 0  # one page now
    filter_by(page, "hard", "the longer")
    hard_and_longer = expected(wrong, difficulty="hard", longer=True)
    assert 0 < len(hard_and_longer) < len(hard)
    assert listed(page) == hard_and_longer
    assert all(row["longer"] for row in listed(page))
    filter_by(page, "any", "not the longer")
    not_longer = expected(wrong, longer=False)
    assert page.inner_text("#wrong-count") == (
        f"{len(not_longer)} of the {len(wrong)} wrong pairs match."
    )
    assert listed(page) == not_longer[:25]
    assert re.search(r"longer=no&page=2", page.get_attribute("nav.pager a[rel=next]", "href"))
    page.click("#wrong-filters >> text=Clear")
    page.wait_for_selector(f"#wrong-count:has-text('{len(wrong)} wrong pairs of')")
    assert listed(page) == expected(wrong)[:25]

    # A row opens its pair's review page, with the people's votes.
    gap, _, pair = wrong[0]
    page.click(f"#wrong-table a.pair-link:has-text('#{pair.pk}')")
    page.wait_for_selector(f"h1:has-text('Pair #{pair.pk}')")
    assert page.url == f"{live_server.url}/projects/{evaluation.project.pk}/pairs/{pair.pk}/"
    assert pair.prompt in page.inner_text("#question")
    votes = page.locator("table.votes tbody tr").all_inner_texts()
    assert sorted(row.split("\t")[0] for row in votes) == sorted(VOTERS)
    assert "Votes a / b / tie:" in page.inner_text("body")


def test_an_annotator_of_the_project_gets_no_wrong_pairs_page(
    live_server, annotator_page, evaluation
):
    log_in(annotator_page, live_server, "ann")
    answer = annotator_page.goto(f"{live_server.url}/evaluations/{evaluation.job.pk}/")
    assert answer.status == 404
    assert annotator_page.locator("#wrong-table").count() == 0
    assert "Question" not in annotator_page.inner_text("body")
