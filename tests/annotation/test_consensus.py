"""Consensus kept current as labels and decisions arrive; gold and repeat assignments."""

import pytest

from annotation.agreement.selectors import agreement_summary
from annotation.labelling.services import assignment_next, label_submit
from annotation.models import Assignment, ConsistencyCheck, PairConsensus
from annotation.pairs.services import pair_adjudicate, pair_adjudication_clear, pair_set_gold
from tests.factories import MembershipFactory, PairFactory


def vote(project, person, side: str, strength: int = 2):
    """Have `person` answer their next assignment with stored side a, b or tie."""
    assignment = assignment_next(project=project, annotator=person)
    screen = "tie" if side == "tie" else ("left" if assignment.left == side else "right")
    label_submit(
        assignment_id=assignment.pk, annotator=person, screen_choice=screen, strength=strength
    )
    return assignment


@pytest.fixture
def people(project):
    return [MembershipFactory(project=project).user for _ in range(3)]


def test_consensus_follows_each_label(project, people):
    pair = PairFactory(project=project)
    vote(project, people[0], "a", 3)
    consensus = PairConsensus.objects.get(pair=pair)
    assert (consensus.votes_a, consensus.winner, consensus.difficulty) == (1, "a", "medium")
    vote(project, people[1], "b", 1)
    consensus.refresh_from_db()
    assert consensus.contested and consensus.winner == "" and consensus.difficulty == "hard"
    vote(project, people[2], "a", 3)
    consensus.refresh_from_db()
    assert (consensus.winner, consensus.contested) == ("a", False)
    assert consensus.agreement == pytest.approx(2 / 3)
    assert consensus.mean_strength == pytest.approx(3.0)
    assert consensus.margin == pytest.approx(2 / 3 * 3 / 3)


def test_a_pair_everyone_calls_a_tie_is_easy(project, people):
    pair = PairFactory(project=project)
    for person in people[:2]:
        vote(project, person, "tie")
    consensus = PairConsensus.objects.get(pair=pair)
    assert (consensus.winner, consensus.agreement, consensus.margin) == ("tie", 1.0, 0.0)
    assert consensus.difficulty == "easy"  # agreed, not contested: a tie has no strength
    vote(project, people[2], "a", 3)
    consensus.refresh_from_db()
    assert (consensus.winner, consensus.difficulty) == ("tie", "medium")  # 2/3 agree


def test_adjudication_overrides_the_majority_and_can_be_removed(project, people, lead):
    pair = PairFactory(project=project)
    vote(project, people[0], "a")
    vote(project, people[1], "b")
    pair_adjudicate(pair=pair, lead=lead, choice="b", note="B cites the source")
    consensus = PairConsensus.objects.get(pair=pair)
    assert (consensus.winner, consensus.adjudicated, consensus.contested) == ("b", True, True)
    pair_adjudication_clear(pair=pair)
    consensus.refresh_from_db()
    assert (consensus.winner, consensus.adjudicated) == ("", False)


def test_gold_pairs_are_served_at_the_gold_rate_and_scored(project, people):
    project.gold_rate = 1.0
    project.save()
    gold = PairFactory(project=project)
    ordinary = PairFactory(project=project)
    pair_set_gold(pair=gold, choice="a")
    first = vote(project, people[0], "b")
    assert (first.pair, first.kind) == (gold, Assignment.Kind.GOLD)
    gold.refresh_from_db()
    assert gold.slots_taken == 0  # gold pairs take no annotator place
    second = assignment_next(project=project, annotator=people[0])
    assert (second.pair, second.kind) == (ordinary, Assignment.Kind.REGULAR)
    vote(project, people[1], "a")
    accuracy = {
        a["name"]: a["gold_accuracy"] for a in agreement_summary(project=project)["annotators"]
    }
    assert accuracy == {people[0].username: 0.0, people[1].username: 1.0}


def test_ordinary_queue_never_serves_gold_pairs(project, people):
    gold = PairFactory(project=project)
    pair_set_gold(pair=gold, choice="tie")
    assert assignment_next(project=project, annotator=people[0]) is None


def test_repeat_shows_a_labelled_pair_with_sides_swapped_and_measures_flips(project, people):
    pair = PairFactory(project=project)
    first = vote(project, people[0], "a")
    project.repeat_rate = 1.0
    project.save()
    again = assignment_next(project=project, annotator=people[0])
    assert (again.pair, again.kind) == (pair, Assignment.Kind.REPEAT)
    assert again.left != first.left  # sides swapped
    label_submit(assignment_id=again.pk, annotator=people[0], screen_choice="left", strength=1)
    check = ConsistencyCheck.objects.get()
    assert check.choice == again.left and check.flipped == (again.left != "a")
    assert pair.labels.count() == 1  # the repeat is not a second vote
    assert PairConsensus.objects.get(pair=pair).votes_a == 1
    entry = agreement_summary(project=project)["annotators"][0]
    assert entry["repeat_checks"] == 1
    assert entry["flip_rate"] == (1.0 if check.flipped else 0.0)
    # Each label is re-checked once: nothing more to repeat, nothing left to label.
    assert assignment_next(project=project, annotator=people[0]) is None
