"""The reward-model trainer: Bradley-Terry on chosen/rejected pairs, one forward pass for both.

The loop: measure the untrained model, train, evaluate, checkpoint, save. Encoding, batches,
the loss, checkpoints and model loading are each in their own module beside this one.
"""

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers.optimization import get_cosine_schedule_with_warmup

from workers.ml.checkpoints import CHECKPOINT, load_checkpoint, save_checkpoint
from workers.ml.config import TrainConfig
from workers.ml.encoding import Encoded, encode_rows
from workers.ml.losses import bradley_terry_loss
from workers.ml.metrics import preference_metrics
from workers.ml.models import (
    choose_defaults,
    compute_device,
    load_base_model,
    load_tokenizer,
    reads_last_token,
    save_model,
    starting_point,
    unwrapped,
    with_lora,
)
from workers.ml.packing import (
    choose_packing,
    collate,
    collate_packed,
    default_token_budget,
    length_grouped_batches,
    packed_rewards,
    rewards,
    token_budget_batches,
)


class Cancelled(Exception):
    """The run was cancelled from the UI; the loop stopped after the current step."""


@dataclass
class Reporter:
    """How the loop talks to the outside: progress, log lines, and whether to stop."""

    progress: Callable[[int, int, dict], None] = lambda step, total, metrics: None
    log: Callable[[str], None] = lambda line: None
    should_stop: Callable[[], bool] = lambda: False


@torch.no_grad()
def evaluate(model, tokenizer, items: list[Encoded], batch_size: int, pack_budget: int = 0) -> dict:
    """The figures of workers.ml.metrics on held-out pairs; packed like training when it is."""
    if not items:
        return {}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    if pack_budget:
        batches = token_budget_batches(items, pack_budget, seed=0)
    else:
        batches = length_grouped_batches(items, batch_size * 2, seed=0)
    for batch_ids in batches:
        batch_items = [items[i] for i in batch_ids]
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
        ):
            if pack_budget:
                batch = collate_packed(batch_items, pack_budget, tokenizer.pad_token_id, device)
                scores = packed_rewards(model, *batch)
            else:
                scores = rewards(model, collate(batch_items, tokenizer.pad_token_id, device))
        half = len(batch_items)
        values = scores.tolist()  # one wait for the device per batch
        chosen += zip(batch_ids, values[:half], strict=True)
        rejected += zip(batch_ids, values[half : 2 * half], strict=True)
    model.train(was_training)
    return preference_metrics(
        [s for _, s in sorted(chosen)],
        [s for _, s in sorted(rejected)],
        [it.chosen.response_tokens for it in items],
        [it.rejected.response_tokens for it in items],
        [it.difficulty for it in items],
    )


# ---------------------------------------------------------------------------------------
# Compiling the layers


def repeated_blocks(model) -> torch.nn.ModuleList | None:
    """The model's stack of identical transformer layers."""
    for module in unwrapped(model).modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module) > 1
            and len({type(block) for block in module}) == 1
        ):
            return module
    return None


def compile_blocks(model, trial: Callable[[], None], log: Callable[[str], None]) -> bool:
    """Compile each transformer layer (one graph serves them all, since they share code),
    then run `trial`, a forward and backward pass of a real batch. Compiling fuses the
    layer's small element-wise kernels and takes the Python overhead out of each step; on
    any failure the layers go back to plain eager execution and training goes on."""
    blocks = repeated_blocks(model)
    if blocks is None:
        return False
    for block in blocks:
        block.compile(dynamic=False)
    try:
        trial()
    except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
        for block in blocks:
            block._compiled_call_impl = None
        torch._dynamo.reset()
        log(f"compiling the layers failed, training without: {str(error)[:300]}")
        return False
    finally:
        model.zero_grad(set_to_none=True)
    return True


# ---------------------------------------------------------------------------------------
# The loop


def sample_rows(rows: list[dict], max_pairs: int | None, seed: int) -> list[dict]:
    """At most max_pairs rows, drawn at random (by the run's seed), in their original order:
    the first ones imported may all come from one source or one day."""
    if not max_pairs or max_pairs >= len(rows):
        return rows
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), max_pairs))]


def accumulation_windows(n_micro: int, accumulation: int) -> list[int]:
    """How many micro-batches each optimizer step averages: `accumulation`, and whatever is
    left for the last step, so that a short last window weighs as much as a full one."""
    return [min(accumulation, n_micro - start) for start in range(0, n_micro, accumulation)]


def train(
    config: TrainConfig,
    train_rows: list[dict],
    test_rows: list[dict],
    output_dir: Path,
    reporter: Reporter | None = None,
) -> dict:
    """Measure the untrained model on the held-out pairs (step 0), train, evaluate every
    `eval_every` steps, checkpoint, and save the model to output_dir.

    A checkpoint in output_dir from an earlier, interrupted attempt is resumed from.
    Returns the final held-out metrics, with the untrained model's under "untrained" and the
    method and learning rate used (chosen for the base model where left open) under
    "settings".
    """
    reporter = reporter or Reporter()
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    device = compute_device()
    tokenizer = load_tokenizer(starting_point(config))
    model = load_base_model(config, tokenizer)
    config = choose_defaults(config, model)
    reporter.log(f"{config.method} fine-tuning, learning rate {config.learning_rate:g}")
    if config.init_from:
        reporter.log(f"starting from the reward model in {config.init_from}")
    if config.method == "lora":
        model = with_lora(model, config)
    model = model.to(device)
    decoder = reads_last_token(model)
    train_rows = sample_rows(train_rows, config.max_pairs, config.seed)
    train_items = encode_rows(tokenizer, train_rows, config.max_length, decoder=decoder)
    test_items = encode_rows(tokenizer, test_rows, config.max_length, decoder=decoder)
    cut = sum(it.truncated for it in train_items + test_items)
    reporter.log(
        f"{len(train_items)} training pairs, {len(test_items)} held out; {cut} pairs had "
        f"their prompt shortened to fit {config.max_length} tokens (none dropped)"
    )

    pack = choose_packing(config, model, train_items, tokenizer.pad_token_id, device)
    budget = config.tokens_per_batch or default_token_budget(train_items, config.batch_size)
    if pack:
        reporter.log(f"packed batches of {budget} tokens, no padding")

    def epoch_batches(epoch: int) -> list[list[int]]:
        if pack:
            return token_budget_batches(train_items, budget, config.seed + epoch)
        return length_grouped_batches(train_items, config.batch_size, config.seed + epoch)

    micro_batches = []
    for epoch in range(math.ceil(config.epochs)):  # a fractional last epoch takes a share
        batches = epoch_batches(epoch)
        share = min(1.0, config.epochs - epoch)
        micro_batches += batches[: max(1, round(len(batches) * share))]
    windows = accumulation_windows(len(micro_batches), config.gradient_accumulation)
    total_steps = len(windows)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, fused=device.type == "cuda"
    )  # fused: one kernel for the whole update on a GPU
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )

    def held_out() -> dict:
        return evaluate(model, tokenizer, test_items, config.batch_size, budget if pack else 0)

    step = 0
    checkpoint = output_dir / CHECKPOINT
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, device)
        step, untrained = state["step"], state["untrained"]
        reporter.log(f"resumed from the checkpoint at step {step}")
    else:
        # Step 0: what the untrained model gets right, the figure training has to beat.
        untrained = held_out()
        reporter.progress(0, total_steps, {"step": 0, "eval": untrained})

    def batch_loss(items: list[Encoded]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            if pack:
                scores = packed_rewards(
                    model, *collate_packed(items, budget, tokenizer.pad_token_id, device)
                )
            else:
                scores = rewards(model, collate(items, tokenizer.pad_token_id, device))
        half = len(items)
        chosen, rejected = scores[:half], scores[half:]
        loss = bradley_terry_loss(
            chosen,
            rejected,
            margin=torch.tensor([it.margin for it in items], device=device)
            if config.margin_loss
            else None,
            center_rewards=config.center_rewards,
            length_penalty=config.length_penalty,
            chosen_tokens=torch.tensor([it.chosen.response_tokens for it in items], device=device),
            rejected_tokens=torch.tensor(
                [it.rejected.response_tokens for it in items], device=device
            ),
        )
        return loss, chosen, rejected

    model.train()
    if config.compile and pack and device.type == "cuda":
        reporter.log("compiling the layers (about a minute on a fresh machine)")
        started = time.perf_counter()
        sample = [train_items[i] for i in micro_batches[0]]
        if compile_blocks(model, lambda: batch_loss(sample)[0].backward(), reporter.log):
            reporter.log(f"compiled the layers in {time.perf_counter() - started:.0f} s")

    first_step, tokens, train_seconds = step, 0, 0.0
    window_start = sum(windows[:step])  # the first micro-batch after the checkpoint
    while step < total_steps:
        if reporter.should_stop():
            raise Cancelled(f"cancelled at step {step}")
        started = time.perf_counter()
        window = micro_batches[window_start : window_start + windows[step]]
        window_start += windows[step]
        for batch_ids in window:
            items = [train_items[i] for i in batch_ids]
            tokens += sum(it.tokens for it in items)
            loss, chosen, rejected = batch_loss(items)
            (loss / len(window)).backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1

        # One wait for the device per step, so the timing below is real.
        figures = torch.stack(
            [loss.detach(), (chosen > rejected).float().mean(), (chosen - rejected).mean()]
        ).tolist()
        metrics = {
            "step": step,
            "loss": figures[0],
            "accuracy": figures[1],
            "mean_margin": figures[2],
            "learning_rate": scheduler.get_last_lr()[0],
        }
        train_seconds += time.perf_counter() - started
        metrics.update(
            tokens=tokens,  # real (non-pad) tokens since this attempt started
            train_seconds=train_seconds,
            tokens_per_second=tokens / train_seconds,
            eta_seconds=train_seconds / (step - first_step) * (total_steps - step),
        )
        if step % config.eval_every == 0 or step == total_steps:
            metrics["eval"] = held_out()
        reporter.progress(step, total_steps, metrics)
        if step % config.checkpoint_every == 0 and step < total_steps:
            save_checkpoint(checkpoint, model, optimizer, scheduler, step, untrained)

    final = held_out()
    final["truncated_pairs"] = cut
    final["untrained"] = untrained
    final["settings"] = {"method": config.method, "learning_rate": config.learning_rate}
    save_model(model, tokenizer, config, output_dir, final)
    checkpoint.unlink(missing_ok=True)
    return final
