"""Rater reliability (annotation.agreement.reliability) side by side with crowd-kit, the
reference its Dawid-Skene and MACE are checked against, in one run.

Speed: 1,000,000 labels from 50 annotators over 300,000 pairs (three or four distinct
annotators a pair, 75% right, the rest any answer; every response a shown on the left, so the
models coincide), both estimators with their full iteration budget, ours and crowd-kit's with
the same number of iterations (crowd-kit's MACE with one restart: its restarts all start
from the same seed), and the largest difference between the estimates. Target: each of ours
at most 5 s on the 2-core machine, 10x faster than crowd-kit.

Quality: simulated crowds whose truth is known, and the real HH dev pairs with simulated
annotators on their real response lengths: accuracy against the truth of the head count
(ties between top choices broken by a fair coin, counted in expectation; the product's
consensus leaves such pairs without a winner), of the posterior winners of ours and of
crowd-kit's plain models, and of ours told nothing of the sides (every shown_left unknown),
which are those models with our priors.

    .venv/bin/python benchmarks/reliability.py [--labels 1000000] [--seeds 10] [--skip-speed]
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import django
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")  # the test factories'
django.setup()

from agreement import synthetic as agreement_labels  # noqa: E402
from crowdkit.aggregation import MACE, DawidSkene  # noqa: E402

from annotation.agreement.maths import CHOICE_A, N_CHOICES, vote_counts  # noqa: E402
from annotation.agreement.reliability import dawid_skene, mace  # noqa: E402
from annotation.pairs.formats import split_hh_dialogues  # noqa: E402
from tests.factories import simulated_crowd  # noqa: E402

TARGET_SECONDS = 5.0
HH_DEV = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-dev.jsonl"
CAREFUL = [("careful", a) for a in (0.85, 0.86, 0.87, 0.88, 0.89, 0.90)]
CARELESS = ["random", "random", "left"]


def synthetic(n_labels: int, n_pairs: int, n_raters: int, seed: int = 0):
    """The agreement benchmark's labels (benchmarks/agreement.py): item, rater, choice."""
    table = agreement_labels(n_labels, n_pairs, n_raters, seed)
    # crowd-kit's MACE sums per-worker counts in sorted order but indexes its parameters in
    # order of first appearance: rows sorted by annotator, then answer, make the two agree.
    order = np.lexsort((table.choice, table.rater))
    return table.item[order], table.rater[order], table.choice[order]


def crowdkit_posterior(model, n_items: int) -> np.ndarray:
    return model.probas_.reindex(index=range(n_items), columns=range(N_CHOICES)).to_numpy()


def timed(run, repeats: int):
    runs, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        runs.append(time.perf_counter() - started)
    return result, max(runs)


def speed(n_labels: int, n_pairs: int, n_raters: int, iterations: int | None) -> None:
    item, rater, choice = synthetic(n_labels, n_pairs, n_raters)
    shown = np.full(item.size, CHOICE_A)
    frame = pd.DataFrame({"task": item, "worker": rater, "label": choice})
    args = (item, rater, choice, shown, n_pairs, n_raters)
    ds_n, mace_n = iterations or 100, iterations or 50
    print(f"\n{n_labels:,} labels, {n_pairs:,} pairs, {n_raters} annotators\n")
    print("| estimator | iterations | ours (worst of 3) | crowd-kit | ratio | max abs diff |")
    print("|---|---|---|---|---|---|")
    ours, our_s = timed(lambda: dawid_skene(*args, iterations=ds_n, tol=None, smoothing=0.0), 3)
    theirs, their_s = timed(lambda: DawidSkene(n_iter=ds_n, tol=-np.inf).fit(frame), 1)
    diff = np.nanmax(np.abs(ours.posterior - crowdkit_posterior(theirs, n_pairs)))
    errors = theirs.errors_
    workers, given = (errors.index.get_level_values(k).to_numpy() for k in (0, 1))
    theirs_confusion = errors[list(range(N_CHOICES))].to_numpy()  # rows: (worker, answer)
    diff = max(diff, np.abs(ours.confusion[workers, :, given] - theirs_confusion).max())
    print(
        f"| Dawid-Skene (no smoothing) | {ds_n} | {our_s:.2f} s | {their_s:.1f} s "
        f"| {their_s / our_s:.0f}x | {diff:.1e} |"
    )
    ours, our_s = timed(lambda: mace(*args, iterations=mace_n, tol=None), 3)
    model = MACE(n_iter=mace_n, n_restarts=1)
    theirs, their_s = timed(lambda: model.fit(frame), 1)
    diff = max(
        np.nanmax(np.abs(ours.posterior - crowdkit_posterior(theirs, n_pairs))),
        np.abs(ours.competence - theirs.spamming_[:, 1]).max(),
        np.abs(ours.spamming - theirs.thetas_).max(),
    )
    print(
        f"| MACE (VB) | {mace_n} | {our_s:.2f} s | {their_s:.1f} s "
        f"| {their_s / our_s:.0f}x | {diff:.1e} |"
    )
    _, default_ds = timed(lambda: dawid_skene(*args), 3)
    _, default_mace = timed(lambda: mace(*args), 3)
    print(
        f"\nWith their defaults (smoothing, tolerance 1e-6, random sides would cost the same): "
        f"Dawid-Skene {default_ds:.2f} s, MACE {default_mace:.2f} s, target "
        f"{TARGET_SECONDS:.0f} s"
    )


def head_count_accuracy(crowd) -> float:
    votes = vote_counts(crowd["item"], crowd["choice"], crowd["n_items"], N_CHOICES)
    top = votes == votes.max(axis=1, keepdims=True)
    labelled = votes.sum(axis=1) > 0
    truth_on_top = top[np.arange(crowd["n_items"]), crowd["truth"]] / top.sum(axis=1)
    return float(np.mean(np.where(labelled, truth_on_top, 0.0)))


def accuracies(crowd) -> tuple[dict, dict]:
    """Accuracy of each method on a crowd, and whether each of ours ranked the careless
    annotators (all but the careful ones, which come first) lowest."""
    args = [crowd[k] for k in ("item", "rater", "choice", "shown_left", "n_items", "n_raters")]
    n_careful = int(crowd["n_careful"])
    frame = pd.DataFrame(
        {"task": crowd["item"], "worker": crowd["rater"], "label": crowd["choice"]}
    )
    frame = frame.iloc[np.lexsort((crowd["choice"], crowd["rater"]))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = {
            "Dawid-Skene (crowd-kit)": DawidSkene().fit(frame),
            "MACE (crowd-kit)": MACE(n_restarts=1).fit(frame),
        }
    blind = args[:3] + [np.full(crowd["item"].size, -1)] + args[4:]
    ours = {
        "Dawid-Skene": dawid_skene(*args),
        "MACE": mace(*args),
        "Dawid-Skene, sides not used": dawid_skene(*blind),
        "MACE, sides not used": mace(*blind),
    }
    truth, n_items = crowd["truth"], crowd["n_items"]
    correct = {"head count": head_count_accuracy(crowd)}
    for name, result in ours.items():
        correct[name] = float(np.mean(np.nan_to_num(result.posterior).argmax(1) == truth))
    for name, model in theirs.items():
        posterior = np.nan_to_num(crowdkit_posterior(model, n_items))
        correct[name] = float(np.mean(posterior.argmax(1) == truth))
    lowest, left = {}, {}
    for name, result in ours.items() if n_careful < crowd["n_raters"] else ():
        careful, careless = result.score[:n_careful], result.score[n_careful:]
        lowest[name] = bool(careless.max() < careful.min())
        left[name] = left_clicker(result, crowd["left_rater"])
    return correct, lowest, left


def left_clicker(result, rater: int) -> tuple[float, float]:
    """The left clicker's score, and how often the model has it answer left (told the
    sides) or a (not told) when the truth is the other response."""
    if result.confusion is not None:
        return float(result.score[rater]), float(result.confusion[rater, 1, 0])
    return float(result.score[rater]), float(result.spamming[rater, 0])


def quality_table(title: str, crowds: list) -> None:
    figures = [accuracies(crowd) for crowd in crowds]
    print(f"\n{title} ({len(crowds)} seeds)\n")
    print("| method | accuracy vs truth (mean ± sd) | careless ranked lowest | left clicker |")
    print("|---|---|---|---|")
    for name in figures[0][0]:
        values = np.array([f[0][name] for f in figures])
        ranked = [f[1][name] for f in figures if name in f[1]]
        rank = f"{sum(ranked)} of {len(ranked)}" if ranked else "—"
        left = "—"
        if name in figures[0][2]:
            score, answer = np.mean([f[2][name] for f in figures], axis=0)
            side, other = ("a", "b") if "not used" in name else ("left", "right")
            said = f"ξ({side})" if name.startswith("MACE") else f"P({side} when {other} is better)"
            left = f"score {score:.2f}, {said} {answer:.2f}"
        line = f"| {name} | {100 * values.mean():.1f}% ± {100 * values.std():.1f} | {rank} |"
        print(f"{line} {left} |")


def simulated(seeds: int, careless: bool) -> list:
    raters = CAREFUL + (CARELESS if careless else [])
    crowds = []
    for seed in range(seeds):
        crowd = simulated_crowd(300, raters, (3, 5), np.random.default_rng(seed))
        crowds.append({**crowd, "n_careful": len(CAREFUL), "left_rater": len(CAREFUL) + 2})
    return crowds


def hh_pairs(seed: int):
    """Response lengths of the HH dev pairs with the chosen response stored as a or b at
    random, and which one it is."""
    lengths, truth = [], []
    rng = np.random.default_rng(seed)
    with HH_DEV.open() as stream:
        for line in stream:
            row = json.loads(line)
            _, chosen, rejected = split_hh_dialogues(row["chosen"], row["rejected"])
            side = int(rng.integers(0, 2))
            lengths.append((len(chosen), len(rejected))[:: 1 - 2 * side])
            truth.append(side)
    return np.array(lengths), np.array(truth)


def hh(seeds: int) -> list:
    """7 careful annotators (85-90% right) and 3 careless ones (30%): random, left, longer."""
    raters = [("careful", a) for a in (0.85, 0.86, 0.87, 0.88, 0.88, 0.89, 0.90)]
    raters += ["random", "left", "longer"]
    crowds = []
    for seed in range(seeds):
        lengths, truth = hh_pairs(seed)
        rng = np.random.default_rng(seed)
        crowd = simulated_crowd(len(truth), raters, (3, 5), rng, lengths=lengths, truth=truth)
        crowds.append({**crowd, "n_careful": 7, "left_rater": 8})
    return crowds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=300_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=None, help="default: each's budget")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        pairs = min(args.pairs, max(args.labels // 3, 1))
        speed(args.labels, pairs, args.annotators, args.iterations)
    quality_table(
        "300 pairs, 6 careful annotators (85-90% right), 2 random, 1 always left, 3-5 votes",
        simulated(args.seeds, careless=True),
    )
    quality_table("The same 6 careful annotators alone", simulated(args.seeds, careless=False))
    if HH_DEV.exists():
        quality_table(
            f"HH dev pairs ({HH_DEV.name}, truth = the chosen response), 7 careful "
            "annotators, 1 random, 1 always left, 1 always the longer response, 3-5 votes",
            hh(args.seeds),
        )
    else:
        print(f"\n{HH_DEV} not found: HH dev pairs skipped")


if __name__ == "__main__":
    main()
