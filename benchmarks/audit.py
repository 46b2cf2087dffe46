"""An audit of a reward model against one evaluation of the same pairs, in one run.

An audit of N pairs with every probe scores 7N responses (both originals and five edited
rejected ones) plus a consistency sample; an evaluation scores 2N. Target: the audit takes
at most 3x the evaluation's time, on this 2-core CPU with the packaged model. Both go
through what the workers run on the scoring queue: the evaluation in training's fp32
precision (as evaluations are), the audit as `score` scores (bf16 where the CPU has bf16
units), so that its file rescores alike. Each is timed best of --repeat after a warm-up.

    .venv/bin/python benchmarks/audit.py --data ../shared/data/hh-rlhf-harmless-dev.jsonl
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train_vs_trl import hh_rows, tokenizer_folder  # noqa: E402


def best_of(repeat: int, run) -> tuple[object, float]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return result, min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="HH-format JSONL")
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tokenizer", help="Tokenizer folder (default: the packaged MiniLM)")
    args = parser.parse_args()

    from workers.ml import probes, scoring

    rows = hh_rows(Path(args.data))[: args.pairs]
    path = tokenizer_folder(args)  # the packaged MiniLM, a score head on top
    fp32, fast = scoring.Scorer(path, training_precision=True), scoring.Scorer(path)
    scoring.evaluate_pairs(fp32, rows[:20])  # warm-up: first calls allocate
    scoring.audit_scores(fast, rows[:20], list(probes.PROBES), check=True)

    evaluation, evaluation_s = best_of(args.repeat, lambda: scoring.evaluate_pairs(fp32, rows))

    def audit():
        scores = scoring.audit_scores(fast, rows, list(probes.PROBES), check=True)
        return probes.audit_figures(rows, scores, list(probes.PROBES))

    figures, audit_s = best_of(args.repeat, audit)
    responses = (2 + len(probes.PROBES)) * len(rows) + 2 * probes.CONSISTENCY_PAIRS
    print(f"{len(rows)} HH pairs, packaged MiniLM, bf16 units: {fast.cpu_bf16}")
    print("| job | responses scored | seconds | responses/s | vs the evaluation |")
    print("|---|---|---|---|---|")
    print(f"| evaluation (fp32) | {2 * len(rows)} | {evaluation_s:.1f} | "
          f"{2 * len(rows) / evaluation_s:.0f} | 1.00x |")  # fmt: skip
    print(f"| audit, {len(probes.PROBES)} probes + consistency | {responses} | {audit_s:.1f} | "
          f"{responses / audit_s:.0f} | {audit_s / evaluation_s:.2f}x |")  # fmt: skip
    print(f"accuracy {evaluation['accuracy']:.3f}; audit's consistency check "
          f"{'passed' if figures['consistency']['passed'] else 'failed'}")  # fmt: skip


if __name__ == "__main__":
    main()
