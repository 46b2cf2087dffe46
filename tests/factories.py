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
