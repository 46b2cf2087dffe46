"""manage.py evaluate: the accuracy with its 95% interval, and on the test split the model's
training run was measured on, the untrained model's accuracy beside it."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from annotation.curation.selectors import dataset_rows
from workers.ml.metrics import length_debiased_accuracy, wilson_interval

pytestmark = pytest.mark.django_db

HELD_OUT = 14  # fruit@v1's test split
UNTRAINED = {"n": HELD_OUT, "accuracy": 0.5, "accuracy_ci95": wilson_interval(7, HELD_OUT)}


def write_pairs(path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def test_split(dataset, tmp_path) -> str:
    """fruit@v1's test split as a file: the pairs its training run was measured on."""
    assert dataset.n_test == HELD_OUT
    rows = [
        {k: r[k] for k in ("prompt", "chosen", "rejected")}
        for r in dataset_rows(dataset)
        if r["split"] == "test"
    ]
    return write_pairs(tmp_path / "test.jsonl", rows[::-1])  # the order does not matter


@pytest.fixture
def measured(reward_model):
    """The model's run recorded its untrained model's figures on fruit@v1's test split."""
    run = reward_model.run
    run.final_metrics = {**run.final_metrics, "untrained": UNTRAINED}
    run.save()
    return reward_model


def evaluate(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("evaluate", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_has_the_accuracy_interval_and_the_untrained_model(measured, test_split):
    figures = json.loads(evaluate(measured.identifier, test_split, "--json")[0])
    n = figures["n"]
    assert n == HELD_OUT
    low, high = figures["accuracy_ci95"]
    assert [low, high] == pytest.approx(wilson_interval(round(n * figures["accuracy"]), n))
    assert low < figures["accuracy"] < high or figures["accuracy"] == 1.0
    assert figures["untrained"] == UNTRAINED


def test_plain_output_shows_the_interval_and_the_untrained_model(measured, test_split):
    out, err = evaluate(measured.artifact, test_split)  # a folder works as well as a name
    first, second = out.splitlines()[:2]
    assert first.startswith("accuracy ") and "% (95% CI " in first and "on 14 pairs" in first
    assert second.startswith(
        "untrained: 50.0% (95% CI 26.8–73.2%) (its training run, on these pairs), +"
    )
    assert "warning" not in err  # the trained model is clear of it


def test_an_untrained_accuracy_not_cleared_is_a_warning(reward_model, test_split):
    run = reward_model.run
    run.final_metrics = {**run.final_metrics, "untrained": {"n": HELD_OUT, "accuracy": 0.95}}
    run.save()
    out, err = evaluate(reward_model.identifier, test_split)
    assert "untrained: 95.0% (95% CI 68.5–98.7%) (its training run, on these pairs)" in out
    assert err.startswith("warning: ")  # 14 pairs cannot tell 100% from 95%
    assert "the untrained model's accuracy (95.0%) inside the 95% interval" in err
    assert "warning" not in out


def test_other_pairs_are_not_set_against_the_untrained_model(measured, test_split, tmp_path):
    with open(test_split) as pairs:
        rows = [json.loads(line) for line in pairs][:-1]  # not the same pairs
    fewer = write_pairs(tmp_path / "fewer.jsonl", rows)
    out, _ = evaluate(measured.identifier, fewer)
    assert "on 13 pairs" in out and "untrained" not in out
    assert "untrained" not in json.loads(evaluate(measured.identifier, fewer, "--json")[0])


def test_figures_without_an_interval_get_one(dataset, test_split, monkeypatch):
    """Whatever the scorer's figures hold, --json carries the interval as a [low, high] pair."""
    from rewardmodels.models import RewardModel, TrainingRun
    from workers.management.commands import evaluate as command
    from workers.ml import scoring

    run = TrainingRun.objects.create(dataset=dataset, status="succeeded")
    RewardModel.objects.create(
        identifier="rm-1-fruit-v1", run=run, project=dataset.project,
        dataset=dataset, base_model=run.base_model,
        artifact="/nowhere",
    )  # fmt: skip
    old = {
        "n": 40, "accuracy": 0.75, "mean_reward_gap": 0.3, "ece": 0.05, "by_difficulty": {},
        "length": {"reward_length_correlation": None, "accuracy_chosen_shorter": None,
                   "accuracy_chosen_longer": None, "pairs_chosen_shorter": 0,
                   "pairs_chosen_longer": 0},
    }  # fmt: skip
    monkeypatch.setattr(command, "scorer", lambda path, training_precision: None)
    monkeypatch.setattr(scoring, "evaluate_pairs", lambda scorer, rows, **_: dict(old))
    figures = json.loads(evaluate("rm-1-fruit-v1", test_split, "--json")[0])
    assert figures["accuracy_ci95"] == pytest.approx(wilson_interval(30, 40))
    out, _ = evaluate("rm-1-fruit-v1", test_split)
    assert out.splitlines()[0] == "accuracy 75.0% (95% CI 59.8–85.8%) on 40 pairs"


def test_json_has_the_length_debiased_accuracy_and_calibration_against_people(
    reward_model, dataset, tmp_path
):
    rows = [r for r in dataset_rows(dataset) if r["split"] == "test"]
    for k, row in enumerate(rows):
        if k % 2:  # a long rejected answer: here the chosen one is the shorter
            row["rejected"] += " and then some more words" * 12
        row["agreement"], row["n_votes"] = (0.75, 4) if k % 3 else (1.0, 1)
    figures = json.loads(
        evaluate(reward_model.identifier, write_pairs(tmp_path / "p.jsonl", rows), "--json")[0]
    )
    length = figures["length"]
    assert length["pairs_chosen_shorter"] == 7 and length["pairs_chosen_longer"] == 7
    assert figures["length_debiased_accuracy"] == pytest.approx(
        (length["accuracy_chosen_shorter"] + length["accuracy_chosen_longer"]) / 2
    )
    right = {side: round(7 * length[f"accuracy_chosen_{side}"]) for side in ("shorter", "longer")}
    for side in ("shorter", "longer"):
        assert length[f"accuracy_chosen_{side}_ci95"] == pytest.approx(
            wilson_interval(right[side], 7)
        )
    picks = [[True] * right[side] + [False] * (7 - right[side]) for side in ("shorter", "longer")]
    assert figures["length_debiased_accuracy_ci95"] == pytest.approx(
        length_debiased_accuracy(*picks)[1]
    )
    people = figures["people_calibration"]
    assert people["n"] == 9  # the rows with four votes; one vote is no share
    assert people["mean_share"] == 0.75 and people["brier_baseline"] == 0.0
    assert sum(part["n"] for part in people["bins"]) == 9
    plain = evaluate(reward_model.identifier, str(tmp_path / "p.jsonl"))[0]
    assert "length-debiased accuracy " in plain and "% (95% CI " in plain.split("debiased")[1]
    assert "calibration against people on 9 pairs with two or more votes: Brier " in plain


def test_json_pairs_lists_every_pair_in_the_files_order(reward_model, dataset, tmp_path):
    rows = [r for r in dataset_rows(dataset) if r["split"] == "test"]
    for k, row in enumerate(rows):
        if k % 3 == 0:  # the curt answer marked chosen: the model gets these wrong
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    path = write_pairs(tmp_path / "p.jsonl", rows)
    figures = json.loads(evaluate(reward_model.identifier, path, "--json", "--pairs")[0])
    pairs = figures["pairs"]
    assert len(pairs) == figures["n"] == HELD_OUT
    assert [p["index"] for p in pairs] == [p["pair_id"] for p in pairs] == list(range(HELD_OUT))
    assert set(pairs[0]) == {
        "index", "pair_id", "chosen_reward", "rejected_reward", "gap", "right", "difficulty",
        "chosen_tokens", "rejected_tokens", "chosen_longer",
    }  # fmt: skip
    assert sum(p["right"] for p in pairs) == round(figures["accuracy"] * HELD_OUT)
    assert [p["right"] for p in pairs] == [k % 3 != 0 for k in range(HELD_OUT)]
    for pair, row in zip(pairs, rows, strict=True):
        assert pair["gap"] == pytest.approx(pair["chosen_reward"] - pair["rejected_reward"], 1e-5)
        assert pair["right"] == (pair["gap"] > 0)
        assert pair["chosen_longer"] == (pair["chosen_tokens"] > pair["rejected_tokens"])
        assert pair["difficulty"] == (row["difficulty"] or None)
    length = figures["length"]
    assert sum(p["chosen_longer"] for p in pairs) == length["pairs_chosen_longer"]
    without = json.loads(evaluate(reward_model.identifier, path, "--json")[0])
    assert "pairs" not in without and without["accuracy"] == figures["accuracy"]


def test_pairs_goes_with_json(reward_model, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="add --json"):
        evaluate(reward_model.identifier, str(tmp_path / "none.jsonl"), "--pairs")
