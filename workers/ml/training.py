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

from workers.ml import distributed
from workers.ml.checkpoints import (
    find_checkpoint,
    load_checkpoint,
    remove_checkpoints,
    save_checkpoint,
)
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
    Rewards,
    choose_packing,
    collate,
    collate_packed,
    default_token_budget,
    length_grouped_batches,
    token_budget_batches,
)
from workers.ml.probes import augmented_rows


class Cancelled(Exception):
    """The run was cancelled from the UI; the loop stopped after the current step."""


class Diverged(Exception):
    """The training loss became NaN or infinite: the run stops at that step."""


@dataclass
class Reporter:
    """How the loop talks to the outside: progress, log lines, and whether to stop."""

    progress: Callable[[int, int, dict], None] = lambda step, total, metrics: None
    log: Callable[[str], None] = lambda line: None
    should_stop: Callable[[], bool] = lambda: False


@torch.no_grad()
def evaluate(
    net: Rewards, tokenizer, items: list[Encoded], batch_size: int, pack_budget: int = 0
) -> dict:
    """The figures of workers.ml.metrics on held-out pairs; packed like training when it is.
    In a run of several processes, they score the batches in turns and share the scores."""
    if not items:
        return {}
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    chosen, rejected = [], []
    if pack_budget:
        batches = token_budget_batches(items, pack_budget, seed=0)
    else:
        batches = length_grouped_batches(items, batch_size * 2, seed=0)
    for batch_ids, counts in distributed.evaluation_turns(batches):
        batch_items = [items[i] for i in batch_ids]
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
        ):
            if pack_budget:
                scores = net(*collate_packed(batch_items, pack_budget, tokenizer.pad_token_id,
                                             device))  # fmt: skip
            else:
                scores = net(collate(batch_items, tokenizer.pad_token_id, device))
        if counts:
            half = len(batch_items)
            values = scores.tolist()  # one wait for the device per batch
            chosen += zip(batch_ids, values[:half], strict=True)
            rejected += zip(batch_ids, values[half : 2 * half], strict=True)
    net.train(was_training)
    shared = distributed.gather_objects((chosen, rejected))
    chosen = [pair for part, _ in shared for pair in part]
    rejected = [pair for _, part in shared for pair in part]
    return preference_metrics(
        [s for _, s in sorted(chosen)],
        [s for _, s in sorted(rejected)],
        [it.chosen.response_tokens for it in items],
        [it.rejected.response_tokens for it in items],
        [it.difficulty for it in items],
        [it.share_chosen for it in items],
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


def accumulate_gradients(
    net: torch.nn.Module,
    window: list[list[int]],
    batch_loss: Callable[[list[int]], tuple[torch.Tensor, ...]],
) -> torch.Tensor:
    """Back-propagate one optimizer step's micro-batches; returns the step's loss, accuracy
    and mean reward gap over all its pairs (on the device, not yet waited for).

    Each micro-batch's mean loss weighs by its share of the step's pairs, so every pair
    counts the same however the pairs fall into micro-batches: packed ones hold from one to
    dozens. `batch_loss` gives a micro-batch's loss, chosen and rejected rewards (all of its
    pairs') and what this process back-propagates."""
    pairs = sum(len(batch_ids) for batch_ids in window)
    sums = None  # over the step's pairs: loss, pairs right, reward gap
    for position, batch_ids in enumerate(window, 1):
        with distributed.without_sync(net, last=position == len(window)):
            loss, chosen, rejected, backward = batch_loss(batch_ids)
            (backward * (len(batch_ids) / pairs)).backward()
        gaps = (chosen - rejected).detach().float()
        figures = torch.stack([loss.detach().float() * len(batch_ids), (gaps > 0).float().sum(),
                               gaps.sum()])  # fmt: skip
        sums = figures if sums is None else sums + figures
    return sums / pairs


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
    "settings". Called by every process of a run of several (workers/ml/launch.py), it
    trains the same model the one-process run would, and rank 0 alone writes.
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
    processes = distributed.world_size()
    sharded = processes > 1 and (
        config.sharded if config.sharded is not None else distributed.needs_sharding(model, device)
    )
    if not sharded:
        model = model.to(device)  # FSDP moves each process's shards there itself
    decoder = reads_last_token(model)
    train_rows = sample_rows(train_rows, config.max_pairs, config.seed)
    if config.augment_edits:
        train_rows = train_rows + augmented_rows(train_rows)
        reporter.log(f"{len(train_rows) // 2} pairs also with their rejected response edited")
    train_items = encode_rows(tokenizer, train_rows, config.max_length, decoder=decoder)
    test_items = encode_rows(tokenizer, test_rows, config.max_length, decoder=decoder)
    cut = sum(it.truncated for it in train_items + test_items)
    reporter.log(
        f"{len(train_items)} training pairs, {len(test_items)} held out; {cut} pairs had "
        f"their prompt shortened to fit {config.max_length} tokens (none dropped)"
    )

    pack = choose_packing(config, model, train_items, tokenizer.pad_token_id, device)
    pack = not distributed.any_process(not pack, device)  # every process batches alike
    budget = config.tokens_per_batch or default_token_budget(train_items, config.batch_size)
    if pack:
        reporter.log(f"packed batches of {budget} tokens, no padding")
    if processes > 1:
        how = "FSDP, sharded" if sharded else "DDP, a whole copy in each"
        reporter.log(f"{processes} processes ({how}); each scores its share of every batch")
    net = distributed.wrap(Rewards(model), repeated_blocks(model), sharded, device)

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
    parameters = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, fused=device.type == "cuda"
    )  # fused: one kernel for the whole update on a GPU
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )

    def held_out() -> dict:
        return evaluate(net, tokenizer, test_items, config.batch_size, budget if pack else 0)

    step = 0
    checkpoint = find_checkpoint(output_dir)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, device)
        step, untrained = state["step"], state["untrained"]
        reporter.log(f"resumed from the checkpoint at step {step}")
    else:
        # Step 0: what the untrained model gets right, the figure training has to beat.
        untrained = held_out()
        reporter.progress(0, total_steps, {"step": 0, "eval": untrained})

    def shares(batch_ids: list[int]) -> list[list[int]]:
        tokens = [train_items[i].tokens for i in batch_ids] if pack else None
        return distributed.split_batch(batch_ids, tokens)

    # Each process packs its share into a row of its own, of one length for the whole run
    # (compiled layers see one shape): the longest share, where one process packs it all.
    row = budget
    if pack and processes > 1:
        longest = max(sum(train_items[i].tokens for i in share)
                      for batch_ids in micro_batches for share in shares(batch_ids))  # fmt: skip
        row = math.ceil(longest / 256) * 256
        reporter.log(f"each process packs its share into rows of {row} tokens")

    def batch_loss(batch_ids: list[int]) -> tuple[torch.Tensor, ...]:
        """The micro-batch's loss and rewards, all of its pairs', and what this process
        back-propagates: the loss through its own share's rewards."""
        split = shares(batch_ids)
        items = [train_items[i] for i in distributed.own_share(split)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            if pack:
                scores = net(*collate_packed(items, row, tokenizer.pad_token_id, device))
            else:
                scores = net(collate(items, tokenizer.pad_token_id, device))
        sizes = [len(share) for share in split]
        own_chosen, own_rejected = scores[: len(items)], scores[len(items) :]
        chosen, rejected = distributed.gather_rewards(own_chosen, own_rejected, sizes)
        whole = [train_items[i] for share in split for i in share]
        loss = bradley_terry_loss(
            chosen,
            rejected,
            margin=torch.tensor([it.margin for it in whole], device=device)
            if config.margin_loss
            else None,
            center_rewards=config.center_rewards,
            length_penalty=config.length_penalty,
            chosen_tokens=torch.tensor([it.chosen.response_tokens for it in whole], device=device),
            rejected_tokens=torch.tensor(
                [it.rejected.response_tokens for it in whole], device=device
            ),
        )
        own = sizes[distributed.rank()]
        return loss, chosen, rejected, distributed.scaled_for_averaging(loss, own_chosen, own)

    net.train()
    if config.compile and pack and device.type == "cuda":
        reporter.log("compiling the layers (about a minute on a fresh machine)")
        started = time.perf_counter()
        trial = lambda: batch_loss(micro_batches[0])[3].backward()  # noqa: E731
        if compile_blocks(model, trial, reporter.log):
            reporter.log(f"compiled the layers in {time.perf_counter() - started:.0f} s")

    first_step, tokens, train_seconds = step, 0, 0.0
    window_start = sum(windows[:step])  # the first micro-batch after the checkpoint
    last_eval = None
    while step < total_steps:
        if distributed.any_process(reporter.should_stop(), device):
            raise Cancelled(f"cancelled at step {step}")
        started = time.perf_counter()
        window = micro_batches[window_start : window_start + windows[step]]
        window_start += windows[step]
        tokens += sum(train_items[i].tokens for batch_ids in window for i in batch_ids)
        step_figures = accumulate_gradients(net, window, batch_loss)
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1

        figures = step_figures.tolist()  # one wait for the device a step: real timings
        if not math.isfinite(figures[0]):
            raise Diverged(
                f"The training loss became {figures[0]} at step {step} of {total_steps}: the "
                f"run diverged. Try a lower learning rate (this run's: {config.learning_rate:g})."
            )
        metrics = {
            "step": step,
            "loss": figures[0],
            "accuracy": figures[1],
            "mean_margin": figures[2],
            "learning_rate": scheduler.get_last_lr()[0],
        }
        train_seconds += time.perf_counter() - started
        metrics.update(
            tokens=tokens,  # real (non-pad) tokens since this attempt started, all processes'
            train_seconds=train_seconds,
            tokens_per_second=tokens / train_seconds,
            eta_seconds=train_seconds / (step - first_step) * (total_steps - step),
        )
        if device.type == "cuda":  # rank 0's, with several processes
            metrics["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        if step % config.eval_every == 0 or step == total_steps:
            metrics["eval"] = last_eval = held_out()
        reporter.progress(step, total_steps, metrics)
        if step % config.checkpoint_every == 0 and step < total_steps:
            save_checkpoint(output_dir, model, optimizer, scheduler, step, untrained, sharded)

    final = dict(last_eval) if last_eval is not None else held_out()  # the last step's
    final["truncated_pairs"] = cut
    final["untrained"] = untrained
    final["settings"] = {"method": config.method, "learning_rate": config.learning_rate}
    whole_model = gathered_model(model, config, tokenizer) if sharded else model
    if distributed.is_main():
        save_model(whole_model, tokenizer, config, output_dir, final)
        remove_checkpoints(output_dir)
    return final


def gathered_model(model, config: TrainConfig, tokenizer):
    """On rank 0, a whole copy of a sharded model on the CPU: the base model built again (by
    the same seed, as the run built it) with the trained weights gathered into it; None on
    the other processes. Every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    trained = get_model_state_dict(model, options=options)
    if not distributed.is_main():
        return None
    torch.manual_seed(config.seed)
    whole = load_base_model(config, tokenizer)
    if config.method == "lora":
        whole = with_lora(whole, config)
    _, unexpected = whole.load_state_dict(trained, strict=False)
    if unexpected:
        raise ValueError(f"gathered weights the model does not have: {unexpected[:3]}")
    return whole
