import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from annotation.labelling.services import (
    QueueConflict,
    assignment_next,
    assignment_skip,
    label_change,
    label_submit,
)
from annotation.models import Assignment, ConsistencyCheck, Label, Pair, PairConsensus
from tests.factories import MembershipFactory, PairFactory


def answer(assignment, annotator, choice="left", strength=2, **kwargs):
    return label_submit(
        assignment_id=assignment.pk,
        annotator=annotator,
        screen_choice=choice,
        strength=strength,
        **kwargs,
    )


def test_next_pair_prefers_pairs_closest_to_done(project, annotator, other_annotator):
    first, second = PairFactory(project=project), PairFactory(project=project)
    given = assignment_next(project=project, annotator=other_annotator)
    answer(given, other_annotator)
    mine = assignment_next(project=project, annotator=annotator)
    assert mine.pair == given.pair  # the pair with a label comes before a fresh one
    assert {first, second} >= {mine.pair}


def test_live_assignment_is_resumed_not_duplicated(project, annotator):
    PairFactory.create_batch(3, project=project)
    first = assignment_next(project=project, annotator=annotator)
    assert assignment_next(project=project, annotator=annotator) == first
    assert Assignment.objects.count() == 1


def test_no_pair_gets_more_than_k_annotators(project):
    project.annotators_per_pair = 2
    project.save()
    pair = PairFactory(project=project)
    people = [MembershipFactory(project=project).user for _ in range(3)]
    got = [assignment_next(project=project, annotator=p) for p in people]
    assert [a is not None for a in got] == [True, True, False]
    for assignment, person in zip(got[:2], people[:2], strict=True):
        answer(assignment, person)
    assert pair.labels.count() == 2
    assert assignment_next(project=project, annotator=people[2]) is None


def test_annotator_never_gets_a_pair_twice(project, annotator):
    PairFactory(project=project)
    assignment = assignment_next(project=project, annotator=annotator)
    answer(assignment, annotator)
    assert assignment_next(project=project, annotator=annotator) is None


def test_expired_assignment_is_reissued(project, annotator, other_annotator):
    project.annotators_per_pair = 1
    project.save()
    pair = PairFactory(project=project)
    stale = assignment_next(project=project, annotator=annotator)
    Assignment.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    fresh = assignment_next(project=project, annotator=other_annotator)
    assert fresh.pair == pair
    stale.refresh_from_db()
    assert stale.state == Assignment.State.EXPIRED
    # The late answer of the first annotator is refused: the place went to someone else.
    with pytest.raises(QueueConflict, match="someone else"):
        answer(stale, annotator)
    answer(fresh, other_annotator)
    assert pair.labels.count() == 1


def test_late_answer_is_taken_while_the_place_is_still_free(project, annotator, other_annotator):
    PairFactory(project=project)
    stale = assignment_next(project=project, annotator=annotator)
    Assignment.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assignment_next(project=project, annotator=other_annotator)  # reaps the stale one
    answer(stale, annotator)
    assert Pair.objects.get().slots_taken == 2


def test_screen_choice_is_stored_as_the_stored_response(project, annotator):
    PairFactory(project=project)
    assignment = assignment_next(project=project, annotator=annotator)
    label = answer(assignment, annotator, choice="right", strength=3, rationale=" clearer ")
    assert label.choice == assignment.right
    assert label.shown_left == assignment.left
    assert (label.strength, label.rationale) == (3, "clearer")
    assert label.duration_ms is not None


def test_left_right_order_is_random_per_assignment(project):
    PairFactory.create_batch(40, project=project)
    people = [MembershipFactory(project=project).user for _ in range(2)]
    lefts = set()
    for _ in range(20):
        for person in people:
            assignment = assignment_next(project=project, annotator=person)
            lefts.add(assignment.left)
            answer(assignment, person)
    assert lefts == {"a", "b"}


def test_tie_clears_strength_and_respects_the_project(project, annotator):
    PairFactory.create_batch(2, project=project)
    label = answer(assignment_next(project=project, annotator=annotator), annotator, choice="tie")
    assert (label.choice, label.strength) == ("tie", None)
    project.allow_ties = False
    project.save()
    with pytest.raises(ValidationError):
        answer(assignment_next(project=project, annotator=annotator), annotator, choice="tie")


def test_strength_is_required_when_asked(project, annotator):
    PairFactory(project=project)
    assignment = assignment_next(project=project, annotator=annotator)
    with pytest.raises(ValidationError):
        answer(assignment, annotator, strength=None)
    assert not Label.objects.exists()


def test_the_same_answer_sent_again_is_stored_once(project, annotator):
    PairFactory(project=project)
    assignment = assignment_next(project=project, annotator=annotator)
    first = answer(assignment, annotator, rationale="clearer")
    assert answer(assignment, annotator, rationale="clearer ") == first
    assert Label.objects.count() == 1


def test_a_repeat_answer_sent_again_is_stored_once(project, annotator):
    PairFactory(project=project)
    answer(assignment_next(project=project, annotator=annotator), annotator)
    project.repeat_rate = 1.0
    project.save()
    again = assignment_next(project=project, annotator=annotator)
    assert again.kind == Assignment.Kind.REPEAT
    check = answer(again, annotator, choice="right")
    assert answer(again, annotator, choice="right") == check
    assert ConsistencyCheck.objects.count() == 1 and Label.objects.count() == 1


def test_a_different_second_answer_is_a_conflict_and_the_first_is_kept(project, annotator):
    PairFactory(project=project)
    assignment = assignment_next(project=project, annotator=annotator)
    first = answer(assignment, annotator)
    for changed in ({"choice": "right"}, {"strength": 3}, {"rationale": "other"}):
        with pytest.raises(QueueConflict, match="another answer; that answer is kept"):
            answer(assignment, annotator, **changed)
    assert list(Label.objects.values_list("id", "choice", "strength")) == [
        (first.id, first.choice, 2)
    ]


def test_skip_frees_the_place_and_the_pair_does_not_return(project, annotator, other_annotator):
    project.annotators_per_pair = 1
    project.save()
    pair = PairFactory(project=project)
    assignment = assignment_next(project=project, annotator=annotator)
    assignment_skip(assignment_id=assignment.pk, annotator=annotator)
    assert assignment_next(project=project, annotator=annotator) is None
    assert assignment_next(project=project, annotator=other_annotator).pair == pair


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_k(on_postgres):
    """Many annotators ask at once; PostgreSQL row locks keep every pair at k or fewer."""
    project = MembershipFactory().project
    project.annotators_per_pair = 3
    project.save()
    pairs = PairFactory.create_batch(10, project=project)
    people = [MembershipFactory(project=project).user for _ in range(16)]
    barrier = threading.Barrier(len(people))
    errors = []

    def work(person):
        try:
            barrier.wait()
            while (a := assignment_next(project=project, annotator=person)) is not None:
                label_submit(assignment_id=a.pk, annotator=person, screen_choice="left", strength=1)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = [Label.objects.filter(pair=p).count() for p in pairs]
    assert counts == [3] * 10
    assert Assignment.objects.filter(state="active").count() == 0
    # Answers to one pair arrive together and each recounts the pair's votes: none is lost.
    assert [PairConsensus.objects.get(pair=p).n_votes for p in pairs] == [3] * 10


def test_fast_annotator_past_the_lookahead_opens_fresh_pairs(project, annotator, monkeypatch):
    monkeypatch.setattr("annotation.labelling.services.QUEUE_LOOKAHEAD", 2)
    pairs = PairFactory.create_batch(5, project=project)
    for _ in range(2):
        answer(assignment_next(project=project, annotator=annotator), annotator)
    # The two half-finished pairs are this annotator's own: the next one is a fresh pair.
    following = assignment_next(project=project, annotator=annotator)
    assert following.pair in pairs and following.pair.labels.count() == 0


def test_a_member_taken_off_the_project_gives_back_their_pairs(project, annotator, lead):
    from django.core.exceptions import PermissionDenied

    from tests.conftest import client_for

    pair = PairFactory(project=project)
    held = assignment_next(project=project, annotator=annotator)
    assert Pair.objects.get(pk=pair.pk).slots_taken == 1
    project.memberships.get(user=annotator).delete()
    held.refresh_from_db()
    assert held.state == Assignment.State.EXPIRED
    assert Pair.objects.get(pk=pair.pk).slots_taken == 0  # another annotator can have it now
    with pytest.raises(PermissionDenied, match="no longer a member"):
        answer(held, annotator)
    answered = client_for(annotator).post(
        f"/api/assignments/{held.pk}/label/", {"choice": "left", "strength": 2}, format="json"
    )
    assert answered.status_code in (403, 404) and not Label.objects.exists()


def test_an_old_tab_answering_a_reissued_pair_is_a_conflict_not_an_error(project, annotator):
    from tests.conftest import client_for

    PairFactory(project=project)
    old = assignment_next(project=project, annotator=annotator)
    Assignment.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    new = assignment_next(project=project, annotator=annotator)
    assert new.pk != old.pk and new.pair_id == old.pair_id  # the same pair, given again
    with pytest.raises(QueueConflict, match="newer assignment"):
        answer(old, annotator)
    answered = client_for(annotator).post(
        f"/api/assignments/{old.pk}/label/", {"choice": "left", "strength": 2}, format="json"
    )
    assert answered.status_code == 409
    answer(new, annotator)
    assert Label.objects.count() == 1


def test_going_back_several_pairs_changes_that_label_only(project, annotator):
    """The labelling page goes back through every pair answered there: an answer three
    labels back changes, and the later ones stay as they were."""
    PairFactory.create_batch(3, project=project)
    labels = []
    for _ in range(3):
        labels.append(answer(assignment_next(project=project, annotator=annotator), annotator))
    first = labels[0]
    label_change(
        assignment_id=first.assignment_id, annotator=annotator, screen_choice="tie",
        rationale="  Both cite the tide tables. ",
    )  # fmt: skip
    first.refresh_from_db()
    assert (first.choice, first.strength, first.rationale) == (
        "tie", None, "Both cite the tide tables."
    )  # fmt: skip
    for later in labels[1:]:
        later.refresh_from_db()
        assert later.choice != "tie" and later.strength == 2
