"""The pairs table: search, filters, sort, previews; previous and next on the review page."""

import json
import re

import pytest
from django.db import connection

from annotation.agreement.services import consensus_refresh
from annotation.models import Label, Pair
from annotation.pairs import selectors as pair_filters
from annotation.pairs.imports import pairs_import
from annotation.pairs.search import pairs_search_index
from annotation.pairs.selectors import PairFilters, pair_neighbours, pairs_filtered
from annotation.pairs.services import pair_adjudicate
from tests.conftest import client_for, logged_in
from tests.factories import PairFactory

CHAT = [
    {"role": "user", "content": "How do volcanoes form?"},
    {"role": "assistant", "content": "Magma rises through the crust."},
    {"role": "user", "content": "And why do they **erupt**?"},
]


@pytest.fixture
def pairs(project):
    """Five pairs: 0 unanimous for a, 1 contested, 2 split 2:1 for b, 3 unlabelled gold,
    4 unlabelled, from another source, with a chat prompt."""
    made = [
        PairFactory(project=project, response_a="Paris is the capital.", source="web"),
        PairFactory(project=project, response_b="I cannot say <b>bold</b> things.", source="web"),
        PairFactory(project=project, prompt="Tell me about penguins", source="web"),
        PairFactory(project=project, gold_choice="a", source="web"),
        PairFactory(project=project, prompt=CHAT, source="forum", external_id="sha256:ea83"),
    ]
    votes = {0: ["a", "a", "a"], 1: ["a", "b"], 2: ["b", "b", "a"]}
    for index, choices in votes.items():
        for n, choice in enumerate(choices):
            Label.objects.create(pair=made[index], source=f"vendor-{n}", choice=choice, strength=2)
    consensus_refresh(pair_ids=[pair.pk for pair in made])
    pairs_search_index()  # what a worker does moments after pairs are written
    return made


def found(project, **filters) -> list[int]:
    return list(
        pairs_filtered(project=project, filters=PairFilters(**filters)).values_list("id", flat=True)
    )


def test_search_finds_words_in_any_turn_and_either_response(project, pairs):
    ids = [pair.pk for pair in pairs]
    assert found(project, search="volcanoes") == [ids[4]]  # an early turn of the chat
    assert found(project, search="capital paris") == [ids[0]]  # any order, any case
    assert found(project, search="penguins") == [ids[2]]
    assert found(project, search='"the capital"') == [ids[0]]
    assert found(project, search="capital -paris") == []
    assert found(project, search="nowhere-to-be-found") == []


def test_imported_pairs_become_searchable_once_a_worker_indexed_them(
    project, lead, tmp_path, eager, django_capture_on_commit_callbacks
):
    rows = [{"prompt": [{"role": "user", "content": "Which bird swims?"}],
             "chosen": "Penguins swim.", "rejected": "Sparrows swim."}]  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with django_capture_on_commit_callbacks() as sent, path.open("rb") as stream:
        pairs_import(project=project, stream=stream, filename=path.name)
    if connection.vendor == "postgresql":
        assert found(project, search="penguins") == []
        page = logged_in(lead).get(f"/projects/{project.pk}/", {"q": "penguins"})
        assert "1 pair was written moments ago and is not searchable yet" in page.content.decode()
    for callback in sent:  # the import asked a worker to index its pairs (inline here)
        callback()
    assert len(found(project, search="penguins")) == 1
    assert len(found(project, search="bird sparrows")) == 1
    assert (
        'id="unsearchable"'
        not in logged_in(lead).get(f"/projects/{project.pk}/", {"q": "penguins"}).content.decode()
    )


def test_filters_and_sorts(project, pairs):
    ids = [pair.pk for pair in pairs]
    assert found(project, source="forum") == [ids[4]]
    assert found(project, labelled=True) == ids[:3]
    assert found(project, labelled=False) == ids[3:]
    assert found(project, contested=True) == [ids[1]]
    assert found(project, contested=False) == [ids[0], ids[2], ids[3], ids[4]]
    assert found(project, gold=True) == [ids[3]]
    assert found(project, difficulty=("easy",)) == [ids[0]]
    assert found(project, difficulty=("medium", "hard")) == [ids[1], ids[2]]
    pair_adjudicate(pair=pairs[1], lead=None, choice="b")
    assert found(project, decided=True) == [ids[1]]
    assert found(project, decided=False) == [ids[0], ids[2], ids[3], ids[4]]
    assert found(project, sort="-id") == ids[::-1]


def figures(pair_ids: list[int], name: str) -> dict[int, float]:
    """The pairs that have the consensus figure, with it."""
    rows = Pair.objects.filter(pk__in=pair_ids, **{f"consensus__{name}__isnull": False})
    return dict(rows.values_list("id", f"consensus__{name}"))


@pytest.mark.parametrize("name", ["margin", "agreement"])
def test_a_sort_keeps_every_pair_and_puts_those_without_the_figure_last(project, pairs, lead, name):
    ids = [pair.pk for pair in pairs]
    known = figures(ids, name)
    # The contested pair has no margin (no winner); the unlabelled pairs have neither figure.
    assert pairs[1].pk not in figures(ids, "margin") and {ids[3], ids[4]}.isdisjoint(known)
    missing = [pid for pid in ids if pid not in known]
    assert found(project, sort=name) == sorted(known, key=lambda p: (known[p], p)) + missing
    if name == "margin":
        highest_first = sorted(known, key=lambda p: (-known[p], p)) + missing
        assert found(project, sort="-margin") == highest_first
    for sort in (name, f"-{name}") if name == "margin" else (name,):
        page = logged_in(lead).get(f"/projects/{project.pk}/", {"sort": sort}).content.decode()
        assert "5 pairs match." in page and page.count('class="pair-link"') == 5


@pytest.mark.parametrize("sort", ["margin", "-margin", "agreement"])
def test_pages_of_a_sort_run_on_past_the_pairs_with_the_figure(project, pairs, sort):
    """Two a page: the pages together are every pair once, in the sort's order."""
    every = pairs_filtered(project=project, filters=PairFilters(sort=sort))
    paged, number = [], 1
    while True:
        page = pair_filters.table_page(every, str(number), size=2)
        paged += [pair.pk for pair in page.rows]
        assert page.count == 5
        if not page.has_next:
            break
        number += 1
    assert number == 3 and paged == found(project, sort=sort)
    assert pair_filters.table_page(every, "4", size=2).rows == []


@pytest.mark.parametrize(
    ("sort", "labelled"),
    [(sort, labelled) for sort in ["id", "-id", "margin", "-margin", "agreement"]
     for labelled in (True, None)],
)  # fmt: skip
def test_previous_and_next_walk_the_filtered_order(project, pairs, sort, labelled):
    filters = PairFilters(labelled=labelled, sort=sort)
    order = found(project, labelled=labelled, sort=sort)
    walked = []
    for pid in order:
        pair = Pair.objects.select_related("consensus").get(pk=pid)
        walked.append(pair_neighbours(project=project, filters=filters, pair=pair))
    assert walked == [
        (order[i - 1] if i else None, order[i + 1] if i + 1 < len(order) else None)
        for i in range(len(order))
    ]


def test_the_table_renders_previews_once_escaped(project, pairs, lead):
    page = logged_in(lead).get(f"/projects/{project.pk}/").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&amp;lt;" not in page
    assert "How do volcanoes form?" in page and "<strong>erupt</strong>" in page
    assert "sha256:ea83" not in page  # a content hash says nothing to a person
    assert "5 pairs." in page

    narrowed = logged_in(lead).get(f"/projects/{project.pk}/", {"q": "penguins", "gold": "false"})
    shown = narrowed.content.decode()
    assert "1 pair matches" in shown and "Tell me about penguins" in shown
    review_link = re.search(r'href="(/projects/\d+/pairs/\d+/\?[^"]+)"', shown).group(1)
    assert "q=penguins" in review_link and "gold=false" in review_link


def test_the_count_stops_at_its_cap_and_pages_go_on(project, pairs, lead, monkeypatch):
    monkeypatch.setattr(pair_filters, "COUNT_CAP", 3)
    PairFactory.create_batch(30, project=project)
    client = logged_in(lead)
    first = client.get(f"/projects/{project.pk}/").content.decode()
    assert "More than 3 pairs." in first and "Page 1</span>" in first and 'rel="next"' in first
    second = client.get(f"/projects/{project.pk}/", {"page": "2"}).content.decode()
    assert "Page 2</span>" in second and 'rel="next"' not in second
    assert second.count('class="pair-link"') == 10
    beyond = client.get(f"/projects/{project.pk}/", {"page": "9"}).content.decode()
    assert "No pairs on this page" in beyond


def test_a_count_that_runs_out_of_time_says_so(project, pairs):
    if connection.vendor != "postgresql":
        pytest.skip("the time limit is PostgreSQL's")
    slow = Pair.objects.filter(project=project).extra(where=["pg_sleep(0.1) IS NOT NULL"])
    assert pair_filters.count_upto(slow, 1000) is None
    assert pair_filters.count_upto(Pair.objects.filter(project=project), 3) == 4
    assert Pair.objects.filter(project=project).count() == 5  # the connection still works


def test_deciding_goes_on_to_the_next_pair_of_the_filter(project, pairs, lead):
    client = logged_in(lead)
    first, second = pairs[0], pairs[2]
    url = f"/projects/{project.pk}/pairs/{first.pk}/?contested=false&labelled=true"
    page = client.get(url).content.decode()
    query = "?labelled=true&amp;contested=false"
    assert f'href="/projects/{project.pk}/pairs/{second.pk}/{query}" id="next-pair"' in page
    answer = client.post(url, {"action": "decide", "choice": "a"})
    assert answer.status_code == 302
    assert answer.url == f"/projects/{project.pk}/pairs/{second.pk}/?labelled=true&contested=false"
    assert f"Decided #{first.pk}: a." in client.get(answer.url).content.decode()


def test_the_api_reads_the_same_filters(project, pairs, lead):
    api = client_for(lead)
    answer = api.get(f"/api/projects/{project.pk}/pairs/", {"q": "penguins", "labelled": "1"})
    assert [row["id"] for row in answer.json()["results"]] == [pairs[2].pk]
    refused = api.get(f"/api/projects/{project.pk}/pairs/", {"sort": "length", "difficulty": "x"})
    assert refused.status_code == 400
    assert {"sort", "difficulty"} <= set(refused.json())


def test_a_pair_too_wordy_to_index_does_not_stop_the_others(project):
    if connection.vendor != "postgresql":
        pytest.skip("the index is PostgreSQL's")
    wordy = " ".join(f"w{n:07d}" for n in range(150_000))  # past the 1 MB a tsvector holds
    PairFactory(project=project, response_a=wordy)
    after = PairFactory(project=project, response_a="Penguins swim.")
    assert pairs_search_index() == 2
    assert found(project, search="penguins") == [after.pk]


def test_bad_paging_and_yes_no_values_answer_calmly(project, pairs, lead):
    client = logged_in(lead)
    assert client.get(f"/projects/{project.pk}/", {"page": "9" * 30}).status_code == 200
    api = client_for(lead)
    unlabelled = api.get(f"/api/projects/{project.pk}/pairs/", {"labelled": "0"}).json()
    assert [row["id"] for row in unlabelled["results"]] == [pairs[3].pk, pairs[4].pk]


def test_the_api_pages_like_the_table(project, pairs, lead, monkeypatch):
    monkeypatch.setattr(pair_filters, "COUNT_CAP", 60)
    PairFactory.create_batch(70, project=project)
    api = client_for(lead)
    first = api.get(f"/api/projects/{project.pk}/pairs/").json()
    assert (first["count"], first["count_capped"], first["previous"]) == (61, True, None)
    assert len(first["results"]) == 50 and "page=2" in first["next"]
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 25 and second["next"] is None
    assert {r["id"] for r in first["results"]}.isdisjoint(r["id"] for r in second["results"])
    one = api.get(f"/api/projects/{project.pk}/pairs/", {"gold": "true"}).json()
    assert (one["count"], one["count_capped"], one["next"]) == (1, False, None)


NINE_TURNS = [
    {"role": "user" if n % 2 == 0 else "assistant", "content": f"Turn {n} about harbours."}
    for n in range(8)
] + [{"role": "user", "content": "So which **harbour** is safest?"}]

FOLDS = re.compile(r"<details\b.*?</details>", re.DOTALL)


def test_a_long_conversation_shows_its_last_question_and_folds_the_turns_before(project, lead):
    pair = PairFactory(project=project, prompt=NINE_TURNS)
    client = logged_in(lead)
    for url in (f"/projects/{project.pk}/", f"/projects/{project.pk}/pairs/{pair.pk}/"):
        page = client.get(url).content.decode()
        assert "<summary>8 earlier turns</summary>" in page
        unfolded = FOLDS.sub("", page)
        assert "So which <strong>harbour</strong> is safest?" in unfolded  # in view
        assert "Turn 7 about harbours." in page and "Turn 7 about harbours." not in unfolded
    # The table's fold holds the latest six of the eight and says two more come before.
    table = client.get(f"/projects/{project.pk}/").content.decode()
    assert "2 more before these" in table and "Turn 1 about harbours." not in table
    assert "Turn 2 about harbours." in table


def test_a_one_question_prompt_folds_nothing(project, pairs, lead):
    page = logged_in(lead).get(f"/projects/{project.pk}/", {"q": "penguins"}).content.decode()
    assert "Tell me about penguins" in FOLDS.sub("", page) and "earlier turn" not in page
