"""The retraining loop end to end on CPU with the packaged model, through the commands a
team runs: round 1's pairs labelled, curated, trained on and promoted; round 2's candidates
paired where the model is least sure, labelled, and retrained on from the first model; both
models evaluated on both rounds' fresh held-out sets and the promotion decided and recorded.
Tasks run inline (eager) and commit as they go, as they do on a worker."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from annotation.models import Candidate, CuratedDataset, Pair
from rewardmodels.models import EvaluationRun, Promotion, Retraining, RewardModel
from tests.factories import separable_rows

TRAIN_FLAGS = ["--epochs", "3", "--batch-size", "8", "--max-length", "64", "--eval-every", "100"]


def command(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


def label_all(project, pairs, better: dict[str, int], tmp_path, name: str) -> None:
    """Two annotators' labels for each pair, imported: the politer response (higher rank in
    `better`) wins, as the separable rows were written."""
    rows = []
    for pair in pairs:
        choice = "a" if better[pair.response_a] > better[pair.response_b] else "b"
        rows += [{"pair": pair.external_id, "annotator": who, "choice": choice, "strength": 2}
                 for who in ("ann", "bob")]  # fmt: skip
    command("import_labels", project.name, write_jsonl(tmp_path / name, rows))


@pytest.mark.django_db(transaction=True)
def test_the_loop_from_round_one_to_a_retrained_promoted_model(tmp_path, eager):
    from tests.factories import ProjectFactory
    from workers.ml import scoring

    # Separable pairs are told apart by politeness, which the padding probe adds: the gate
    # is tested on its own (test_probes.py); here every flip is tolerated.
    project = ProjectFactory(name="loop", audit_flip_tolerance=1.0)
    first = separable_rows(48, seed=1)
    better = {row["chosen"]: 2 for row in first} | {row["rejected"]: 0 for row in first}
    records = [{"prompt": r["prompt"], "responses": [r["chosen"], r["rejected"]]} for r in first]
    command("import_candidates", "loop", write_jsonl(tmp_path / "r1.jsonl", records),
            "--round", "r1", "--policy", "sft-1")  # fmt: skip
    command("make_pairs", "loop", "--round", "r1", "--strategy", "random")
    label_all(project, Pair.objects.filter(round__name="r1"), better, tmp_path, "l1.jsonl")
    command("curate", "loop", "--name", "loop", "--test-fraction", "0.25")
    v1 = CuratedDataset.objects.get(identifier="loop@v1")
    held_out_r1 = Pair.objects.filter(round__name="r1", held_out=True).count()
    assert held_out_r1 and v1.n_rows == 48 - held_out_r1  # held-out pairs never trained on

    first_model = command("train", "loop@v1", *TRAIN_FLAGS, "--wait")[-1]
    command("audit", first_model, "--dataset", "loop@v1", "--out", str(tmp_path / "a.jsonl"))
    command("promote", first_model, "--reason", "round 1")
    rm1 = RewardModel.objects.get(identifier=first_model)

    # Round 2: a newer policy's three answers per prompt; pairs where rm1 is least sure.
    second = separable_rows(20, seed=2)
    middle = {row["prompt"]: row["rejected"] + " Thanks, sorry." for row in second}
    better |= {row["chosen"]: 2 for row in second} | {row["rejected"]: 0 for row in second}
    better |= {answer: 1 for answer in middle.values()}
    records = [{"prompt": r["prompt"], "responses": [r["chosen"], r["rejected"],
                middle[r["prompt"]]]} for r in second]  # fmt: skip
    command("import_candidates", "loop", write_jsonl(tmp_path / "r2.jsonl", records),
            "--round", "r2", "--policy", "sft-2")  # fmt: skip
    made = command("make_pairs", "loop", "--round", "r2", "--strategy", "uncertain",
                   "--model", first_model, "--per-prompt", "1")  # fmt: skip
    assert made == ["made 20 pairs (uncertain) from round r2"]
    candidates = list(Candidate.objects.filter(round__name="r2"))
    rewards, _ = scoring.scorer_for(rm1.artifact).score(
        [c.prompt for c in candidates], [c.response for c in candidates]
    )  # scored here, apart from the worker's scoring
    by_prompt: dict[str, dict[str, float]] = {}
    for candidate, reward in zip(candidates, rewards.tolist(), strict=True):
        by_prompt.setdefault(candidate.prompt_key, {})[candidate.response] = reward
    for pair in Pair.objects.filter(round__name="r2"):
        scores = next(group for group in by_prompt.values() if pair.response_a in group)
        gaps = [abs(a - b) for i, a in enumerate(scores.values())
                for b in list(scores.values())[i + 1 :]]  # fmt: skip
        gap = scores[pair.response_a] - scores[pair.response_b]
        assert abs(gap) == pytest.approx(min(gaps), abs=1e-4)  # the smallest gap of its prompt
        assert pair.predicted_gap == pytest.approx(gap, abs=1e-4)
    label_all(project, Pair.objects.filter(round__name="r2"), better, tmp_path, "l2.jsonl")
    assert Pair.objects.filter(round__name="r2", held_out=True).exists()

    lines = command("retrain", "loop", "--dataset", "loop", "--from", first_model, "--wait")
    retraining = Retraining.objects.get()
    new = RewardModel.objects.get(run=retraining.run)
    assert lines[-1] == new.identifier != first_model
    assert retraining.run.start_from == rm1 and retraining.previous == rm1
    assert "starting from the reward model" in retraining.run.log_tail
    v2 = retraining.run.dataset
    assert v2.identifier == "loop@v2" and v2.filters == v1.filters
    assert v2.n_rows == 48 + 20 - Pair.objects.filter(held_out=True).count()

    evaluated = EvaluationRun.objects.filter(retraining=retraining)
    assert sorted((e.reward_model.identifier, e.round.name) for e in evaluated) == sorted(
        (m, r) for m in (first_model, new.identifier) for r in ("r1", "r2")
    )
    assert all(e.status == EvaluationRun.Status.SUCCEEDED for e in evaluated)
    decision = retraining.decision
    assert retraining.status == Retraining.Status.DECIDED
    assert decision["basis"] == "round r2's held-out set"
    figures = decision["metrics"]
    wanted = figures[new.identifier]["accuracy"] >= figures[first_model]["accuracy"] - 0.01
    assert retraining.promoted == wanted
    assert any(line.startswith("promoted" if wanted else "not promoted") for line in lines)
    latest = Promotion.objects.filter(project=project).first()
    assert (latest.reward_model == new) == wanted and latest.promoted
    if wanted:
        assert f"Retraining {retraining.pk}" in latest.reason

    drift = json.loads("\n".join(command("drift", "loop", "--json")))
    assert [r["name"] for r in drift["rounds"]] == ["r1", "r2"]
    rows = {m["identifier"]: m for m in drift["models"]}
    assert set(rows) == {first_model, new.identifier}
    assert rows[latest.reward_model.identifier]["promoted"]
    for identifier in rows:
        for name in ("r1", "r2"):
            cell = rows[identifier]["rounds"][name]
            low, high = cell["accuracy_ci95"]
            assert low <= cell["accuracy"] <= high and cell["n"] > 0
