"""Batch scoring against transformers' text-classification pipeline: same model, same rows.

The rows are the prompts and both responses of an HH-format file, in file order. The
pipeline runs with `function_to_apply="none"` (raw rewards) at its default batch size of
one and at 32 rows a batch; the scorer sorts by length and batches by tokens (on a CPU
with AMX it runs in bf16 and is timed in fp32 too). Prints rows and real tokens per second
and checks the rewards agree.
(Evaluation issue target: at least 2x the pipeline, on the CPU and on a GPU.)

    .venv/bin/python benchmarks/score_vs_pipeline.py \
        --data ../shared/data/hh-rlhf-harmless-dev.jsonl
    python3 benchmarks/score_vs_pipeline.py --data hh.jsonl --model qwen2.5-0.5b-shaped
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train_vs_trl import QWEN_SHAPED, base_model, hh_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="HH-format JSONL")
    parser.add_argument("--model", choices=["minilm", QWEN_SHAPED], default="minilm")
    parser.add_argument("--tokenizer", help="Tokenizer folder (default: the packaged MiniLM)")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32, help="Pipeline rows per batch")
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    from workers.ml import scoring

    pairs = hh_rows(Path(args.data))
    prompts = [r["prompt"] for r in pairs for _ in range(2)][: args.rows]
    responses = [r[key] for r in pairs for key in ("chosen", "rejected")][: args.rows]
    path = base_model(args)
    scorer = scoring.Scorer(path)
    scorer.max_length = args.max_length
    sequences = scorer.encode(prompts, responses)
    real_tokens = sum(len(s.ids) for s in sequences)

    def timed(run):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        result = run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return result, time.perf_counter() - started

    scorer.score(prompts[:64], responses[:64])  # warm-up
    ours, ours_seconds = timed(lambda: scorer.score(prompts, responses)[0])
    fp32 = None
    if scorer.cpu_bf16:  # also without the CPU's bf16 units, for comparison
        scorer.autocast = False
        fp32 = timed(lambda: scorer.score(prompts, responses)[0])
        scorer.autocast = True

    pipe = pipeline(
        "text-classification", model=scorer.model, tokenizer=scorer.tokenizer,
        function_to_apply="none", device=scorer.device,
    )  # fmt: skip
    inputs = [{"text": p, "text_pair": r} for p, r in zip(prompts, responses, strict=True)]
    options = {"truncation": "only_first", "max_length": scorer.max_length}
    results = {}
    for batch_size in (1, args.batch_size):
        pipe(inputs[:16], batch_size=batch_size, **options)  # warm-up
        out, seconds = timed(lambda b=batch_size: pipe(inputs, batch_size=b, **options))
        results[batch_size] = (np.array([o["score"] for o in out]), seconds)

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"{len(prompts)} rows, {real_tokens} real tokens, {args.model}, {device}")
    print(f"{'scorer':24} {'rows/s':>8} {'real tok/s':>11}")
    print(f"{'prefhub (sorted batches)':24} {len(prompts) / ours_seconds:8.1f} "
          f"{real_tokens / ours_seconds:11.0f}" + ("   bf16 (AMX)" if fp32 else ""))  # fmt: skip
    if fp32:
        agree = np.corrcoef(fp32[0], ours)[0, 1]
        print(f"{'prefhub, fp32':24} {len(prompts) / fp32[1]:8.1f} "
              f"{real_tokens / fp32[1]:11.0f}   reward correlation with bf16 "
              f"{agree:.5f}")  # fmt: skip
    for batch_size, (rewards, seconds) in results.items():
        agree = np.corrcoef(rewards, ours)[0, 1]
        print(f"{f'pipeline, batch {batch_size}':24} {len(prompts) / seconds:8.1f} "
              f"{real_tokens / seconds:11.0f}   speed-up {seconds / ours_seconds:.2f}x, "
              f"reward correlation {agree:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
