"""Every agreement figure for 1,000,000 labels over 300,000 pairs and 50 annotators.

Target (agreement issue): at most 2 s on the 2-core development machine. Times the pure
maths (`annotation.agreement_report.agreement_report`) on synthetic labels: each pair labelled by
three or four distinct annotators, with strengths, shown order, durations, some gold pairs.

    .venv/bin/python benchmarks/agreement.py [--labels 1000000] [--pairs 300000]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotation.agreement.consensus import LabelTable
from annotation.agreement.report import agreement_report

TARGET_SECONDS = 2.0


def synthetic(n_labels: int, n_pairs: int, n_raters: int, seed: int = 0) -> LabelTable:
    rng = np.random.default_rng(seed)
    per_pair = np.full(n_pairs, n_labels // n_pairs)
    per_pair[: n_labels - per_pair.sum()] += 1
    item = np.repeat(np.arange(n_pairs), per_pair)
    # Distinct raters within a pair: a random start and a random stride coprime with
    # n_raters, so that every two annotators meet on some pairs.
    strides = np.array([s for s in range(1, n_raters) if np.gcd(s, n_raters) == 1])
    start = np.repeat(rng.integers(0, n_raters, n_pairs), per_pair)
    stride = np.repeat(rng.choice(strides, n_pairs), per_pair)
    step = np.arange(item.size) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    rater = (start + step * stride) % n_raters
    truth = rng.integers(0, 2, n_pairs)
    noisy = rng.random(item.size) < 0.25
    choice = np.where(noisy, rng.integers(0, 3, item.size), truth[item])
    strength = np.where(choice == 2, np.nan, rng.integers(0, 4, item.size).astype(float))
    return LabelTable(
        item=item,
        rater=rater,
        choice=choice,
        strength=strength,
        shown_left=rng.integers(0, 2, item.size),
        duration_ms=rng.gamma(2.0, 4000.0, item.size),
        day=rng.integers(20000, 20060, item.size),
        length_a=rng.integers(1, 2000, n_pairs),
        length_b=rng.integers(1, 2000, n_pairs),
        gold=np.where(rng.random(n_pairs) < 0.01, truth, -1),
        decided=np.full(n_pairs, -1),
        rater_names=[f"annotator-{r}" for r in range(n_raters)],
        rater_kinds=["annotator"] * n_raters,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=300_000)
    parser.add_argument("--annotators", type=int, default=50)
    args = parser.parse_args()
    table = synthetic(args.labels, args.pairs, args.annotators)
    agreement_report(table)  # warm up imports and caches
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        report = agreement_report(table)
        runs.append(time.perf_counter() - started)
    best, worst = min(runs), max(runs)
    print(
        f"agreement report: {args.labels:,} labels, {args.pairs:,} pairs, "
        f"{args.annotators} annotators, {len(report['cohen_kappa'])} annotator pairs: "
        f"best {best:.2f} s, worst {worst:.2f} s of 3; target {TARGET_SECONDS:.0f} s -> "
        f"{TARGET_SECONDS / worst:.1f}x under target"
    )


if __name__ == "__main__":
    main()
