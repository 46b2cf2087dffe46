"""The order of precedence of a project's unlabelled work: rounds before imported backlogs by
default, moved and paused by leads on the settings page and through the API."""

import pytest

from annotation.labelling.selectors import precedence_of, queue_progress
from annotation.labelling.services import assignment_next, label_submit
from annotation.models import Pair, QueuePrecedence, Round
from annotation.projects.services import precedence_move
from tests.conftest import client_for, logged_in
from tests.factories import MembershipFactory, PairFactory


@pytest.fixture
def backlog_and_round(project, other_annotator, on_postgres):
    """An imported backlog someone has started on (so that, nearest to done, it would come
    first), then a round of policy outputs made after it."""
    old = PairFactory.create_batch(5, project=project, source="backlog.jsonl")
    assert len(served(project, other_annotator, 5)) == 5
    round_ = Round.objects.create(project=project, name="r1", held_out_share=0.2)
    fresh = PairFactory.create_batch(3, project=project, source="round r1", round=round_)
    return old, round_, fresh


def served(project, annotator, n):
    pairs = []
    for _ in range(n):
        given = assignment_next(project=project, annotator=annotator)
        if given is None:
            break
        pairs.append(given.pair)
        label_submit(assignment_id=given.pk, annotator=annotator, screen_choice="left", strength=1)
    return pairs


def place(kind, name, paused=False):
    return {"kind": kind, "name": name, "paused": paused}


def test_a_rounds_pairs_are_served_before_older_imports(project, annotator, backlog_and_round):
    old, _, fresh = backlog_and_round
    got = served(project, annotator, 8)
    assert set(got[:3]) == set(fresh)
    assert set(got[3:]) == set(old)
    order = precedence_of(project=project, counts=True)
    assert [(p.kind, p.name, p.placed) for p in order] == [
        ("round", "r1", False), ("source", "backlog.jsonl", False),
    ]  # fmt: skip


def test_moving_an_import_above_the_round_serves_it_first(project, annotator, backlog_and_round):
    old, _, fresh = backlog_and_round
    precedence_move(project=project, kind="source", name="backlog.jsonl", move="up")
    got = served(project, annotator, 8)
    assert set(got[:5]) == set(old)
    assert set(got[5:]) == set(fresh)


def test_a_new_round_goes_on_top_of_the_order_set(project, annotator, backlog_and_round):
    precedence_move(project=project, kind="source", name="backlog.jsonl", move="up")
    newer = Round.objects.create(project=project, name="r2", held_out_share=0.2)
    PairFactory(project=project, source="round r2", round=newer)
    assert [p.name for p in precedence_of(project=project)] == ["r2", "backlog.jsonl", "r1"]
    assert served(project, annotator, 1)[0].round == newer


def test_a_paused_source_is_never_served_and_shows_as_paused(
    project, annotator, lead, backlog_and_round
):
    old, _, fresh = backlog_and_round
    precedence_move(project=project, kind="source", name="backlog.jsonl", move="pause")
    assert queue_progress(project=project, annotator=annotator)["remaining"] == 3
    got = served(project, annotator, 8)
    assert set(got) == set(fresh)
    assert assignment_next(project=project, annotator=annotator) is None
    page = logged_in(lead).get(f"/projects/{project.pk}/settings/")
    section = page.content.decode().split('id="precedence"')[1]
    assert "backlog.jsonl" in section and "paused" in section
    backlog = [p for p in precedence_of(project=project, counts=True) if p.kind == "source"]
    assert (backlog[0].paused, backlog[0].unlabelled) == (True, 5)


def test_a_paused_sources_gold_pairs_are_not_shown_either(project, annotator, backlog_and_round):
    old, _, fresh = backlog_and_round
    Pair.objects.filter(pk__in=[old[0].pk, fresh[0].pk]).update(gold_choice="a")
    project.gold_rate = 1.0
    project.save()
    precedence_move(project=project, kind="source", name="backlog.jsonl", move="pause")
    first = assignment_next(project=project, annotator=annotator)
    assert (first.kind, first.pair_id) == ("gold", fresh[0].pk)
    label_submit(assignment_id=first.pk, annotator=annotator, screen_choice="left", strength=1)
    # No gold pair left outside the paused source: the round's ordinary pairs follow.
    following = served(project, annotator, 8)
    assert old[0] not in following and set(following) == set(fresh[1:])


def test_the_settings_page_buttons_move_and_resume(project, lead, backlog_and_round):
    client = logged_in(lead)
    url = f"/projects/{project.pk}/settings/"
    post = {"action": "precedence", "kind": "source", "name": "backlog.jsonl"}
    assert client.post(url, {**post, "move": "up"}).status_code == 302
    assert [p.name for p in precedence_of(project=project)] == ["backlog.jsonl", "r1"]
    client.post(url, {**post, "move": "pause"})
    client.post(url, {**post, "move": "resume"})
    assert not QueuePrecedence.objects.filter(paused=True).exists()
    page = client.get(url).content.decode()
    assert "Order of the queue" in page and ">3<" in page.replace(" ", "")


def test_the_api_sets_and_reads_the_order(project, lead, annotator, backlog_and_round):
    old, _, _ = backlog_and_round
    url = f"/api/projects/{project.pk}/precedence/"
    api = client_for(lead)
    assert [row["name"] for row in api.get(url).json()] == ["r1", "backlog.jsonl"]
    wanted = [place("source", "backlog.jsonl"), place("round", "r1", paused=True)]
    response = api.put(url, wanted, format="json")
    assert response.status_code == 200, response.json()
    rows = api.get(url).json()
    assert [(r["kind"], r["name"], r["paused"], r["unlabelled"]) for r in rows] == [
        ("source", "backlog.jsonl", False, 5), ("round", "r1", True, 3),
    ]  # fmt: skip
    assert set(served(project, annotator, 9)) == set(old)  # the paused round is not served


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "source", "name": "backlog.jsonl"},
        [place("source", "nowhere.csv")],
        [place("round", "r9")],
        [place("source", "round r1")],  # a round's pairs are placed as the round
        [place("pipeline", "r1")],
        [place("round", "r1"), place("round", "r1")],
        [{**place("round", "r1"), "paused": "yes"}],
        [{**place("round", "r1"), "colour": "red"}],
    ],
)
def test_the_api_refuses_bad_input_and_changes_nothing(project, lead, backlog_and_round, body):
    url = f"/api/projects/{project.pk}/precedence/"
    api = client_for(lead)
    api.put(url, [place("source", "backlog.jsonl")], format="json")
    response = api.put(url, body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert list(QueuePrecedence.objects.values_list("source", "paused")) == [
        ("backlog.jsonl", False)
    ]


def test_annotators_cannot_change_the_order(project, annotator, backlog_and_round):
    api = client_for(annotator)
    url = f"/api/projects/{project.pk}/precedence/"
    assert api.get(url).status_code == 200
    assert api.put(url, [place("source", "backlog.jsonl")], format="json").status_code == 403
    page = logged_in(annotator).post(
        f"/projects/{project.pk}/settings/",
        {"action": "precedence", "kind": "source", "name": "backlog.jsonl", "move": "up"},
    )
    assert page.status_code == 404
    assert not QueuePrecedence.objects.exists()


def test_k_annotators_per_pair_still_hold_across_levels(project, backlog_and_round):
    project.annotators_per_pair = 2
    project.save()
    _, _, fresh = backlog_and_round
    people = [MembershipFactory(project=project).user for _ in range(3)]
    for person in people:
        served(project, person, 8)
    for pair in [*backlog_and_round[0], *fresh]:
        assert pair.labels.count() == 2
