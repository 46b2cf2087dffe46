"""Judges calibrated against the people: agreement with the people's reliability-weighted
winner by how hard the pair was for them, and position consistency where the people split;
the maths on simulated people, then the dashboard and the API on a project with a judge."""

import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from annotation.agreement.consensus import LabelTable
from annotation.agreement.judge_calibration import (
    judge_calibrations,
    people_verdict,
)
from annotation.agreement.maths import CHOICE_A, CHOICE_B, EASY, HARD
from annotation.models import Judge, Label
from tests.annotation.test_agreement import label_table
from tests.conftest import client_for, logged_in
from tests.factories import PairFactory, UserFactory, simulated_crowd
from workers.ml.metrics import wilson_interval

PEOPLE = [("careful", accuracy) for accuracy in (0.55, 0.6, 0.65, 0.7, 0.75, 0.8)]


def table_of(item, rater, choice, shown_left, n_items: int, kinds: list[str]) -> LabelTable:
    return label_table(item, rater, choice, None, n_items, len(kinds), shown_left=shown_left,
                       kinds=kinds)  # fmt: skip


def with_judges(crowd: dict, answers: list[np.ndarray], consistent: list[np.ndarray], rng):
    """The crowd's labels plus one label a pair from each judge (label sources after the
    people), and each label's position consistency (-1 for the people's)."""
    n, people = crowd["n_items"], crowd["n_raters"]
    pairs = np.arange(n)
    table = table_of(
        np.concatenate([crowd["item"], *[pairs] * len(answers)]),
        np.concatenate([crowd["rater"], *[np.full(n, people + j) for j in range(len(answers))]]),
        np.concatenate([crowd["choice"], *answers]),
        np.concatenate([crowd["shown_left"], rng.integers(0, 2, n * len(answers))]),
        n,
        ["annotator"] * people + ["source"] * len(answers),
    )
    return table, np.concatenate([np.full(crowd["item"].size, -1), *consistent])


@pytest.fixture(scope="module")
def calibrated():
    """1,500 pairs, 3-4 of six people of 55-80% accuracy each. Two judges give the same
    answers: the better response where the pair is easy or medium for the people, a coin
    between a and b where it is hard. One holds its pick in both orders everywhere; the
    other only where the people agreed."""
    rng = np.random.default_rng(1)
    crowd = simulated_crowd(1500, PEOPLE, (3, 4), rng)
    people_only = table_of(crowd["item"], crowd["rater"], crowd["choice"], crowd["shown_left"],
                           crowd["n_items"], ["annotator"] * crowd["n_raters"])  # fmt: skip
    verdict = people_verdict(people_only)
    hard = verdict.difficulty == HARD
    answer = np.where(hard, rng.integers(0, 2, hard.size), crowd["truth"])
    always, where_agreed = np.ones(hard.size, dtype=np.int64), np.where(verdict.split, 0, 1)
    table, consistent = with_judges(crowd, [answer, answer], [always, where_agreed], rng)
    people = crowd["n_raters"]
    figures = judge_calibrations(table, [people, people + 1], consistent)
    return {"verdict": verdict, "table": table, "crowd": crowd, "figures": figures}


def test_a_judge_right_on_easy_pairs_and_guessing_on_hard_ones_shows_it(calibrated):
    overconfident, _ = calibrated["figures"].values()
    by_difficulty = overconfident["by_difficulty"]
    assert by_difficulty["easy"]["agreement"] > 0.95
    assert 0.4 < by_difficulty["hard"]["agreement"] < 0.6  # a coin against the people's winner
    assert by_difficulty["hard"]["agreement_ci95"][1] < by_difficulty["easy"]["agreement_ci95"][0]
    assert sum(entry["n"] for entry in by_difficulty.values()) == overconfident["n"] == 1500
    assert by_difficulty["hard"]["n"] > 200
    easy = calibrated["verdict"].difficulty == EASY  # the people's winner there is the truth
    assert np.mean(calibrated["verdict"].winner[easy] == calibrated["crowd"]["truth"][easy]) > 0.95


def test_a_judge_sure_of_itself_where_people_split_is_told_apart_from_a_careful_one(calibrated):
    overconfident, careful = calibrated["figures"].values()
    assert overconfident["consistent_when_split"] == 1.0
    assert overconfident["consistent_when_agreed"] == 1.0
    assert careful["consistent_when_split"] == 0.0
    assert careful["consistent_when_agreed"] == 1.0
    assert overconfident["n_split"] == careful["n_split"] == int(calibrated["verdict"].split.sum())
    assert overconfident["n_split"] + overconfident["n_agreed"] == 1500  # 3+ people a pair


def test_the_peoples_winner_comes_from_the_people_alone(calibrated):
    """Judges that answer a on every pair move neither the people's winner nor difficulty."""
    crowd, verdict = calibrated["crowd"], calibrated["verdict"]
    always_a = np.full(crowd["n_items"], CHOICE_A)
    table, _ = with_judges(crowd, [always_a] * 3, [always_a] * 3, np.random.default_rng(3))
    with_them = people_verdict(table)
    assert np.array_equal(with_them.winner, verdict.winner)
    assert np.array_equal(with_them.difficulty, verdict.difficulty)


def test_with_too_few_people_labels_there_are_no_figures_and_without_judges_no_fit():
    rng = np.random.default_rng(4)
    crowd = simulated_crowd(10, PEOPLE, 3, rng)
    answer = np.full(10, CHOICE_B)
    table, consistent = with_judges(crowd, [answer], [np.ones(10, dtype=np.int64)], rng)
    assert people_verdict(table) is None
    assert judge_calibrations(table, [crowd["n_raters"]], consistent) == {crowd["n_raters"]: None}
    assert judge_calibrations(table, [], consistent) == {}


@pytest.fixture
def judged(project):
    """24 pairs labelled by three people: on 20 they agree strongly, on 4 they split a / b /
    tie; an imported source contradicts them everywhere, and is not one of the people. The
    judge picks the people's answer on the 20 and a on the 4, holding its pick in both
    orders everywhere but on one pair the people agreed on."""
    people = [UserFactory(username=f"person{i}") for i in range(3)]
    Judge.objects.create(name="judge-x", model="m")
    pairs = PairFactory.create_batch(24, project=project)
    for i, pair in enumerate(pairs):
        agreed = i < 20
        answer = "ab"[i % 2]
        for r, (person, split_answer) in enumerate(zip(people, ("a", "b", "tie"), strict=True)):
            choice = answer if agreed else split_answer
            Label.objects.create(pair=pair, annotator=person, choice=choice,
                                 strength=None if choice == "tie" else 3,
                                 shown_left="ab"[(i // 2 + r) % 2])  # fmt: skip
        Label.objects.create(pair=pair, source="vendor", choice="ba"[i % 2], strength=3)
        Label.objects.create(pair=pair, source="judge-x", choice=answer if agreed else "a",
                             strength=2, position_consistent=i != 0)  # fmt: skip
    from annotation.agreement.services import consensus_refresh

    consensus_refresh(pair_ids=[p.pk for p in pairs])
    return pairs


def judge_entry(summary: dict) -> dict:
    (entry,) = [a for a in summary["annotators"] if a["kind"] == "judge"]
    return entry


def test_the_dashboard_and_the_api_calibrate_the_judge_against_the_people(project, judged, lead):
    found = client_for(lead).get(f"/api/projects/{project.pk}/agreement/").json()
    calibration = judge_entry(found)["calibration"]
    assert calibration["agreement"] is not None and calibration["n"] == 24
    assert calibration["by_difficulty"]["easy"] == {
        "agreement": 1.0, "agreement_ci95": wilson_interval(20, 20), "n": 20,
    }  # fmt: skip
    assert calibration["by_difficulty"]["hard"]["n"] == 4
    assert (calibration["consistent_when_split"], calibration["n_split"]) == (1.0, 4)
    assert (calibration["consistent_when_agreed"], calibration["n_agreed"]) == (0.95, 20)
    (vendor,) = [a for a in found["annotators"] if a["name"] == "vendor"]
    assert vendor["kind"] == "source" and "calibration" not in vendor
    out = io.StringIO()
    call_command("agreement", project.name, "--json", stdout=out)
    assert judge_entry(json.loads(out.getvalue()))["calibration"] == calibration
    page = logged_in(lead).get(f"/projects/{project.pk}/dashboard/").content.decode()
    table = page.split('id="judge-calibration"')[1].split("</table>")[0]
    assert "judge-x" in table and "95.0%" in table and "100.0%" in table
    assert "overconfident" in page and "too-few-for-calibration" not in page


def test_each_judge_label_is_read_with_its_own_pick_and_later_ones_are_left_out(project, judged):
    from annotation.agreement.selectors import judge_labels, label_table

    table, pair_ids = label_table(project=project)
    late = PairFactory(project=project)  # labelled after the table was read
    Label.objects.create(pair=late, source="judge-x", choice="a", position_consistent=False)
    Label.objects.create(pair=judged[5], source="judge-y", choice="a", position_consistent=False)
    judges, consistent = judge_labels(project=project, table=table, pair_ids=pair_ids)
    assert [table.rater_names[r] for r in judges] == ["judge-x"]  # vendor is no Judge
    judge = table.rater == judges[0]
    expected = [pair != judged[0].pk for pair in np.asarray(pair_ids)[table.item[judge]]]
    assert consistent[judge].tolist() == [int(e) for e in expected]
    assert (consistent[~judge] == -1).all()


def test_with_too_few_people_labels_the_calibration_is_null_and_the_page_says_so(project, lead):
    person = UserFactory(username="only-one")
    Judge.objects.create(name="judge-x", model="m")
    pairs = PairFactory.create_batch(5, project=project)
    for pair in pairs:
        Label.objects.create(pair=pair, annotator=person, choice="a", strength=2)
        Label.objects.create(pair=pair, source="judge-x", choice="a", position_consistent=True)
    from annotation.agreement.services import consensus_refresh

    consensus_refresh(pair_ids=[p.pk for p in pairs])
    found = client_for(lead).get(f"/api/projects/{project.pk}/agreement/").json()
    assert judge_entry(found)["calibration"] is None
    page = logged_in(lead).get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'id="too-few-for-calibration"' in page and 'id="judge-calibration"' not in page
