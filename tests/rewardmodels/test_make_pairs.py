"""make_pairs: pairs among a round's candidates, the model's least certain first."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Candidate, Pair
from annotation.rounds.services import choose_pairs
from tests.factories import separable_rows


@pytest.fixture
def round_file(tmp_path):
    """Eight prompts with three candidates each: the separable pairs' chosen and rejected
    answers and a third, in between."""
    rows = separable_rows(8, seed=5)
    records = [
        {"prompt": row["prompt"],
         "responses": [row["chosen"], row["rejected"], row["rejected"] + " Sorry, thanks."]}
        for row in rows
    ]  # fmt: skip
    path = tmp_path / "r2.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def uncertain(project, reward_model) -> None:
    call_command(
        "make_pairs", project.name, "--round", "r2", "--strategy", "uncertain",
        "--model", reward_model.identifier, "--per-prompt", "1", "--limit", "5",
    )  # fmt: skip


def test_uncertain_picks_exactly_the_smallest_gaps(reward_model, project, round_file, eager):
    from workers.ml import scoring

    call_command("import_candidates", project.name, round_file, "--round", "r2")
    uncertain(project, reward_model)
    candidates = list(Candidate.objects.filter(round__name="r2"))
    rewards, _ = scoring.scorer_for(reward_model.artifact).score(
        [c.prompt for c in candidates], [c.response for c in candidates]
    )  # scored here, apart from the worker's run
    by_prompt: dict[str, list] = {}
    for candidate, reward in zip(candidates, rewards.tolist(), strict=True):
        assert candidate.scores[reward_model.identifier] == pytest.approx(reward, abs=1e-4)
        by_prompt.setdefault(candidate.prompt_key, []).append((candidate, reward))
    smallest = sorted(
        min(
            ((abs(ra - rb), sorted([a.response, b.response])) for i, (a, ra) in enumerate(group)
             for b, rb in group[i + 1 :]),
            key=lambda gap: gap[0],
        )
        for group in by_prompt.values()
    )[:5]  # fmt: skip
    made = Pair.objects.filter(round__name="r2").order_by("predicted_gap")
    assert made.count() == 5
    assert sorted(sorted([p.response_a, p.response_b]) for p in made) == sorted(
        pair for _, pair in smallest
    )
    assert all(p.selection == "uncertain" and p.predicted_gap is not None for p in made)
    held = {c.prompt_key for c in candidates if c.held_out}
    assert all(p.held_out == (Candidate.objects.filter(response=p.response_a).first().prompt_key
                              in held) for p in made)  # fmt: skip
    uncertain(project, reward_model)
    assert Pair.objects.filter(round__name="r2").count() == 5  # nothing made twice


def test_random_and_extremes_and_what_they_need(project, round_file, db):
    call_command("import_candidates", project.name, round_file, "--round", "r2")
    call_command("make_pairs", project.name, "--round", "r2", "--strategy", "random",
                 "--per-prompt", "2")  # fmt: skip
    assert Pair.objects.filter(round__name="r2", selection="random").count() == 16
    with pytest.raises(CommandError, match="needs --model"):
        call_command("make_pairs", project.name, "--round", "r2", "--strategy", "extremes")
    with pytest.raises(CommandError, match="No round"):
        call_command("make_pairs", project.name, "--round", "r9", "--strategy", "random")
    groups = {"p": [(1, 0.0), (2, 5.0), (3, 1.0)], "q": [(4, 2.0), (5, 2.5)]}
    assert choose_pairs(groups, "extremes") == [(1, 2, -5.0), (4, 5, -0.5)]
    assert choose_pairs(groups, "uncertain", per_prompt=2) == [
        (4, 5, -0.5), (1, 3, -1.0), (2, 3, 4.0)
    ]  # fmt: skip


def test_the_promoted_model_chooses_when_named_promoted(reward_model, project, round_file, eager):
    from rewardmodels.models import Promotion

    call_command("import_candidates", project.name, round_file, "--round", "r2")
    command = ["make_pairs", project.name, "--round", "r2", "--strategy", "extremes",
               "--model", "promoted"]  # fmt: skip
    with pytest.raises(CommandError, match="No model is promoted in 'Helpfulness'"):
        call_command(*command)
    assert not Pair.objects.filter(round__name="r2").exists()
    Promotion.objects.create(project=project, reward_model=reward_model, promoted=True)
    call_command(*command)
    made = Pair.objects.filter(round__name="r2")
    assert made.count() == 8 and all(p.selection == "extremes" for p in made)
    assert all(reward_model.identifier in c.scores for c in Candidate.objects.all())
