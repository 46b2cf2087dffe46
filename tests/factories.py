import random

import factory
from django.contrib.auth import get_user_model

from annotation.models import Membership, Pair, Project

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ANNOTATOR


class PairFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pair

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"pair-{n}")
    prompt = factory.Sequence(lambda n: f"Question number {n}?")
    response_a = factory.Sequence(lambda n: f"First answer {n}")
    response_b = factory.Sequence(lambda n: f"Second answer {n}")


def api_token(user, name: str = "tests") -> str:
    """A working API token of `user`: its secret, sent as `Authorization: Token <secret>`."""
    from annotation.accounts.tokens import create_token

    return create_token(user, name)[1]


WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "pear", "plum", "berry"]


def separable_rows(n: int, seed: int = 0) -> list[dict]:
    """Pairs a reward model can tell apart: the chosen answer is polite, the rejected curt."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fruit = " ".join(rng.choices(WORDS, k=rng.randint(3, 10)))
        rows.append(
            {
                "prompt": f"Question {i}: name some fruit.",
                "chosen": f"Gladly! {fruit}. I hope that helps, thank you for asking.",
                "rejected": f"No. {' '.join(rng.choices(WORDS, k=rng.randint(3, 10)))}",
                "margin": 0.5,
                "difficulty": rng.choice(["easy", "medium", "hard"]),
            }
        )
    return rows


def hh_pairs(path, n: int) -> list[dict]:
    """The first n HH dialogues as prompt / chosen / rejected rows, read by the product's
    own HH parser (the prompt as chat messages, as an import stores it)."""
    import json

    from annotation.pairs.formats import parse_pair_record

    rows = []
    for line, text in enumerate(path.read_text().splitlines()[:n], start=1):
        pair = parse_pair_record(line, json.loads(text), hh=True)
        first = pair.preferred == "a"
        rows.append(
            {
                "prompt": pair.prompt,
                "chosen": pair.response_a if first else pair.response_b,
                "rejected": pair.response_b if first else pair.response_a,
            }
        )
    return rows


def length_skewed_pairs(project, n: int = 60) -> list:
    """n pairs on n prompts, each with one imported label, whose chosen response is the
    longer in 7 of 10, the shorter in 2 of 10 and of equal length in 1 of 10; the chosen
    side alternates between a and b."""
    from annotation.agreement.services import consensus_refresh
    from annotation.models import Label

    pairs = []
    for i in range(n):
        kind = i % 10
        if kind < 7:
            chosen, rejected = f"A full answer, with reasons and an example ({i}).", "Brief."
        elif kind < 9:
            chosen, rejected = "Brief.", f"A rambling answer that says less than it seems ({i})."
        else:
            chosen, rejected = "It is 42.", "It is 41."
        side = "a" if i % 2 else "b"
        a, b = (chosen, rejected) if side == "a" else (rejected, chosen)
        pair = PairFactory(project=project, prompt=f"Question {i}?", response_a=a, response_b=b)
        Label.objects.create(pair=pair, source="imported", choice=side)
        pairs.append(pair)
    consensus_refresh(pair_ids=[p.pk for p in pairs])
    return pairs


def passing_audit(reward_model, dataset=None):
    """An audit of the model on its project's held-out data in which no probe moved it, as
    promotion needs (rewardmodels.evaluation.audits)."""
    from rewardmodels.evaluation.audits import PROBES, audit_record

    figures = {"n": 12, "n_right": 12, "flipped": 0, "flip_rate": 0.0, "mean_change": 0.0}
    return audit_record(
        reward_model=reward_model, dataset=dataset or reward_model.dataset, round_=None,
        probes=list(PROBES), results={"probes": [{"name": p, **figures} for p in PROBES]},
        edited_file="", n_pairs=12,
    )  # fmt: skip


def simulated_crowd(n_items, raters, votes_per_item, rng, lengths=None, truth=None) -> dict:
    """Labels from a simulated crowd on n_items pairs whose better response is known.

    raters: one entry a rater. ("careful", accuracy) gives the better response with that
    probability, otherwise one of the other two answers (the worse one or a tie) at random;
    "random" clicks a or b at random; "left" always the response shown on the left; "longer"
    always the longer one by `lengths` ((n_items, 2) characters of a and b, drawn when None;
    a coin between equal lengths). votes_per_item: an int, or (least, most) drawn per pair;
    a pair's raters are distinct. truth: the better stored response per pair (a or b at
    random when None). Each label shows a or b on the left at random.

    Returns item, rater, choice, shown_left (per label), truth, length_a, length_b (per
    pair) as numpy arrays, with n_items and n_raters.
    """
    import numpy as np

    from annotation.agreement.maths import CHOICE_A, CHOICE_B

    n_raters = len(raters)
    least, most = (votes_per_item,) * 2 if isinstance(votes_per_item, int) else votes_per_item
    most = min(most, n_raters)
    per_item = rng.integers(least, most + 1, n_items)
    seats = np.argsort(rng.random((n_items, n_raters)), axis=1)[:, :most]
    taken = np.arange(most) < per_item[:, None]
    item, rater = np.nonzero(taken)[0], seats[taken]
    truth = rng.integers(0, 2, n_items) if truth is None else np.asarray(truth)
    lengths = rng.integers(20, 2000, (n_items, 2)) if lengths is None else np.asarray(lengths)
    shown_left = rng.integers(0, 2, item.size)

    names = np.array([r if isinstance(r, str) else r[0] for r in raters])
    accuracy = np.array([np.nan if isinstance(r, str) else r[1] for r in raters])
    right = truth[item]
    wrong = (right + rng.integers(1, 3, item.size)) % 3  # either of the other two answers
    length_a, length_b = lengths[item, 0], lengths[item, 1]
    answers = {
        "careful": np.where(rng.random(item.size) < accuracy[rater], right, wrong),
        "random": rng.integers(0, 2, item.size),
        "left": shown_left,
        "longer": np.where(
            length_a == length_b,
            rng.integers(0, 2, item.size),
            np.where(length_a > length_b, CHOICE_A, CHOICE_B),
        ),
    }
    unknown = set(names) - set(answers)
    if unknown:
        raise ValueError(f"unknown kinds of rater: {sorted(unknown)}")
    kind = names[rater]
    choice = np.select([kind == name for name in answers], list(answers.values()))
    return {
        "item": item, "rater": rater, "choice": choice, "shown_left": shown_left,
        "truth": truth, "length_a": lengths[:, 0], "length_b": lengths[:, 1],
        "n_items": n_items, "n_raters": n_raters,
    }  # fmt: skip
