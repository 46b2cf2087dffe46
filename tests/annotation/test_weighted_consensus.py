"""A project's consensus rule: the head count, or votes weighed by each rater's reliability
estimated from all the labels (Dawid-Skene, MACE), fitted on a worker and used for every
pair's winner, margin and difficulty; new labels are weighed with the last fit."""

import numpy as np
import pytest

from annotation.agreement.maths import CHOICE_NAMES
from annotation.agreement.selectors import agreement_summary, consensus_refits_due
from annotation.agreement.services import consensus_refresh
from annotation.models import ConsensusFit, Label, Pair, PairConsensus, Project
from annotation.projects.services import project_update
from tests.conftest import client_for, logged_in
from tests.factories import simulated_crowd

CARELESS_CROWD = [("careful", 0.85), ("careful", 0.9)] * 3 + ["random", "random", "left"]


def store_crowd(project, crowd) -> list[int]:
    """The crowd's labels as label sources rater0, rater1, ... on new pairs; their ids."""
    pairs = Pair.objects.bulk_create(
        Pair(project=project, external_id=f"crowd-{i}", prompt=f"Question {i}?",
             response_a=f"First answer {i}", response_b=f"Second answer {i}")
        for i in range(crowd["n_items"])
    )  # fmt: skip
    ids = [pair.pk for pair in pairs]
    Label.objects.bulk_create(
        Label(pair_id=ids[i], source=f"rater{r}", choice=CHOICE_NAMES[c],
              shown_left=CHOICE_NAMES[left])
        for i, r, c, left in zip(crowd["item"], crowd["rater"], crowd["choice"],
                                 crowd["shown_left"], strict=True)
    )  # fmt: skip
    consensus_refresh(pair_ids=ids)
    return ids


def accuracy(ids: list[int], truth: np.ndarray) -> float:
    winners = dict(PairConsensus.objects.filter(pair_id__in=ids).values_list("pair_id", "winner"))
    return float(
        np.mean([winners[pid] == CHOICE_NAMES[t] for pid, t in zip(ids, truth, strict=True)])
    )


def use_rule(project, rule: str, capture) -> None:
    with capture(execute=True):
        project_update(project=project, fields={"consensus_rule": rule})
    project.refresh_from_db()


@pytest.mark.parametrize("rule", ["dawid_skene", "mace"])
@pytest.mark.django_db
def test_weighing_votes_recovers_the_truth_a_careless_crowd_hides(
    project, eager, django_capture_on_commit_callbacks, rule
):
    crowd = simulated_crowd(300, CARELESS_CROWD, (3, 5), np.random.default_rng(0))
    ids = store_crowd(project, crowd)
    counted = accuracy(ids, crowd["truth"])
    use_rule(project, rule, django_capture_on_commit_callbacks)
    weighed = accuracy(ids, crowd["truth"])
    assert weighed >= counted + 0.03, (counted, weighed)
    fit = ConsensusFit.objects.get(project=project)
    assert fit.enough and fit.rule == rule and fit.n_labels == crowd["item"].size
    rows = PairConsensus.objects.filter(pair_id__in=ids)
    assert all(0.0 <= row.confidence <= 1.0 for row in rows if row.winner)
    assert all(row.margin is not None for row in rows if row.winner)

    use_rule(project, "count", django_capture_on_commit_callbacks)
    assert accuracy(ids, crowd["truth"]) == counted  # back to the head count
    assert not ConsensusFit.objects.filter(project=project).exists()


@pytest.mark.django_db
def test_a_new_label_is_weighed_by_the_last_fit(project, eager, django_capture_on_commit_callbacks):
    crowd = simulated_crowd(300, CARELESS_CROWD, (3, 5), np.random.default_rng(1))
    store_crowd(project, crowd)
    use_rule(project, "dawid_skene", django_capture_on_commit_callbacks)
    careful, clicker = "rater0", "rater8"  # rater8 always picks the left side
    pair = Pair.objects.create(project=project, external_id="fresh", prompt="New question?",
                               response_a="a", response_b="b")  # fmt: skip
    Label.objects.bulk_create([
        Label(pair=pair, source=careful, choice="a", shown_left="b"),
        Label(pair=pair, source=clicker, choice="b", shown_left="b"),
    ])  # fmt: skip
    consensus_refresh(pair_ids=[pair.pk])
    row = PairConsensus.objects.get(pair=pair)
    assert (row.votes_a, row.votes_b) == (1, 1)  # a split by head count
    assert row.winner == "a" and not row.contested and row.confidence > 0.8


@pytest.mark.django_db
def test_too_few_labels_keep_the_head_count_and_say_so(
    project, lead, eager, django_capture_on_commit_callbacks
):
    one_vote_each = simulated_crowd(40, CARELESS_CROWD, 1, np.random.default_rng(2))
    ids = store_crowd(project, one_vote_each)
    counted = dict(PairConsensus.objects.filter(pair_id__in=ids).values_list("pair", "winner"))
    use_rule(project, "mace", django_capture_on_commit_callbacks)
    assert not ConsensusFit.objects.get(project=project).enough
    assert dict(PairConsensus.objects.filter(pair_id__in=ids).values_list("pair", "winner")) == (
        counted
    )
    page = logged_in(lead).get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'id="too-few-for-reliability"' in page
    assert all(entry["reliability"] is None for entry in agreement_summary(project=project)[
        "annotators"])  # fmt: skip


@pytest.mark.django_db
def test_a_weighted_rule_is_fitted_again_once_the_labels_grow(
    project, eager, django_capture_on_commit_callbacks
):
    crowd = simulated_crowd(100, CARELESS_CROWD, 3, np.random.default_rng(3))
    store_crowd(project, crowd)
    assert consensus_refits_due() == []  # the head count needs no fit
    Project.objects.filter(pk=project.pk).update(consensus_rule="dawid_skene")
    assert consensus_refits_due() == [project.pk]  # no fit yet
    use_rule(project, "dawid_skene", django_capture_on_commit_callbacks)
    assert consensus_refits_due() == []
    extra = Pair.objects.create(project=project, external_id="extra", prompt="q?",
                                response_a="x", response_b="y")  # fmt: skip
    Label.objects.bulk_create(
        Label(pair=extra, source=f"rater{r}", choice="a", shown_left="a") for r in range(9)
    )
    assert consensus_refits_due() == []  # 9 more labels: under a tenth
    Label.objects.bulk_create(
        Label(pair=p, source="rater0", choice="b", shown_left="a")
        for p in Pair.objects.filter(project=project).exclude(labels__source="rater0")[:30]
    )
    assert consensus_refits_due() == [project.pk]


@pytest.mark.django_db
def test_the_dashboard_and_its_json_say_whom_to_believe(project, lead):
    crowd = simulated_crowd(300, CARELESS_CROWD, (3, 5), np.random.default_rng(5))
    store_crowd(project, crowd)
    page = logged_in(lead).get(f"/projects/{project.pk}/dashboard/").content.decode()
    flagged = page.split('id="unreliable"')[1].split("</p>")[0]
    assert "rater8 (near chance)" in flagged and "rater6" in flagged and "rater0" not in flagged
    assert 'id="disagreements"' in page
    summary = client_for(lead).get(f"/api/projects/{project.pk}/agreement/").json()
    by_name = {entry["name"]: entry for entry in summary["annotators"]}
    clicker, careful = by_name["rater8"]["reliability"], by_name["rater0"]["reliability"]
    assert set(careful) == {"dawid_skene", "dawid_skene_ci95", "mace", "mace_ci95", "flag"}
    assert careful["dawid_skene_ci95"][0] > clicker["dawid_skene_ci95"][1]
    assert careful["mace"] > 0.6 > 0.2 > clicker["mace"]
    assert by_name["rater8"]["left_rate"] > 0.95  # the side it always picks
    weighted = summary["weighted"]
    assert weighted["rule"] == "dawid_skene" and weighted["n_disagreements"] > 0
    shown = weighted["disagreements"][0]
    assert Pair.objects.filter(pk=shown["pair_id"], project=project).exists()


@pytest.mark.django_db
def test_leads_set_the_consensus_rule_through_the_api(
    project, lead, annotator, eager, django_capture_on_commit_callbacks
):
    crowd = simulated_crowd(100, CARELESS_CROWD, 3, np.random.default_rng(6))
    store_crowd(project, crowd)
    url = f"/api/projects/{project.pk}/"
    refused = client_for(annotator).patch(url, {"consensus_rule": "mace"}, format="json")
    assert refused.status_code == 403
    for bad, message in (
        ({"consensus_rule": "vote"}, "not one of the available choices"),
        ({"min_reliability": 2}, "less than or equal to 1"),
        ({"colour": "red"}, "Not a setting: colour"),
    ):
        answer = client_for(lead).patch(url, bad, format="json")
        assert answer.status_code == 400 and message in str(answer.json()), answer.json()
    project.refresh_from_db()
    assert project.consensus_rule == "count"
    with django_capture_on_commit_callbacks(execute=True):
        done = client_for(lead).patch(url, {"consensus_rule": "mace"}, format="json")
    assert done.status_code == 200 and done.json()["consensus_rule"] == "mace"
    assert ConsensusFit.objects.get(project=project).rule == "mace"  # re-graded on a worker
    project.refresh_from_db()
    assert project.assignment_timeout.total_seconds() == 30 * 60  # the rest as it was


@pytest.mark.django_db
def test_the_review_page_says_how_likely_the_weighted_winner_is(
    project, lead, eager, django_capture_on_commit_callbacks
):
    crowd = simulated_crowd(100, CARELESS_CROWD, 3, np.random.default_rng(7))
    ids = store_crowd(project, crowd)
    client = logged_in(lead)
    page = client.get(f"/projects/{project.pk}/pairs/{ids[0]}/").content.decode()
    assert 'id="weighted-consensus"' not in page  # the head count needs no word
    use_rule(project, "dawid_skene", django_capture_on_commit_callbacks)
    row = PairConsensus.objects.get(pair_id=ids[0])
    page = client.get(f"/projects/{project.pk}/pairs/{ids[0]}/").content.decode()
    said = page.split('id="weighted-consensus"')[1].split("</p>")[0]
    assert "Dawid-Skene" in said and f"{100 * row.confidence:.1f}% likely" in said
