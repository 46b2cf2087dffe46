"""Rounds of policy outputs: import_candidates with its fresh held-out share."""

import hashlib
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Candidate, Project, Round
from annotation.rounds.services import held_out


def write(tmp_path, rows):
    path = tmp_path / "round.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def candidates(n_prompts: int, per_prompt: int = 3) -> list[dict]:
    return [
        {"prompt": f"Question {i}?", "responses": [f"answer {i}.{j}" for j in range(per_prompt)]}
        for i in range(n_prompts)
    ]


def test_a_round_keeps_a_share_of_its_prompts_back(db, tmp_path, capsys):
    call_command("import_candidates", "Loop", write(tmp_path, candidates(200)), "--round", "r1",
                 "--policy", "sft-v1")  # fmt: skip
    round_ = Round.objects.get(project__name="Loop", name="r1")
    assert (round_.n_prompts, round_.n_candidates, round_.policy) == (200, 600, "sft-v1")
    held = set(Candidate.objects.filter(held_out=True).values_list("prompt", flat=True))
    assert 25 <= len(held) <= 55  # 20% of 200 prompts, by hash
    for prompt in held:  # a prompt's candidates are all on one side
        assert not Candidate.objects.filter(prompt=prompt, held_out=False).exists()
    assert f"{len(held)} prompts held out" in capsys.readouterr().out
    call_command("import_candidates", "Loop", write(tmp_path, candidates(210)), "--round", "r1")
    round_.refresh_from_db()
    assert (round_.n_prompts, round_.n_candidates) == (210, 630)  # only the new ten added
    assert set(Candidate.objects.filter(held_out=True).values_list("prompt", flat=True)) >= held


def test_held_out_follows_the_share():
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(2000)]
    counts = {share: sum(held_out(key, share) for key in keys) for share in (0.0, 0.2, 0.5)}
    assert counts[0.0] == 0 and 330 <= counts[0.2] <= 470 and 900 <= counts[0.5] <= 1100
    assert all(held_out(key, 0.2) <= held_out(key, 0.5) for key in keys)  # nested sets


def test_bad_rows_are_named_and_nothing_is_written(db, tmp_path):
    rows = [*candidates(3), {"prompt": "x", "responses": []}, {"responses": ["y"]}]
    with pytest.raises(CommandError, match=r"line 4: give 'response'.*\n.*line 5: missing"):
        call_command("import_candidates", "Loop", write(tmp_path, rows), "--round", "r1")
    assert not Candidate.objects.exists() and not Round.objects.exists()
    assert Project.objects.filter(name="Loop").exists()  # created, as import_pairs does


def test_held_out_pairs_never_reach_a_dataset(project, db):
    from annotation.agreement.services import consensus_refresh
    from annotation.curation.selection import CurationFilters, curation_select
    from annotation.models import Label
    from tests.factories import PairFactory

    kept, held = PairFactory(project=project), PairFactory(project=project, held_out=True)
    for pair in (kept, held):
        Label.objects.create(pair=pair, source="imported", choice="a")
    consensus_refresh(pair_ids=[kept.pk, held.pk])
    selection = curation_select(project=project, filters=CurationFilters())
    assert selection.pair_ids == [kept.pk]
    assert selection.dropped == {"held out to measure drift": 1}


def test_a_bad_round_name_is_refused_before_anything_is_written(db, tmp_path):
    with pytest.raises(CommandError, match="Letters, digits"):
        call_command("import_candidates", "Loop", write(tmp_path, candidates(2)), "--round", "r 1")
    assert not Round.objects.exists() and not Candidate.objects.exists()
