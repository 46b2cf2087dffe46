"""The reward-model trainer: Bradley-Terry on chosen/rejected pairs, one forward pass for both.

train() is the loop: build the model, encode and batch the pairs, measure the untrained
model, then step, evaluate and checkpoint until done, and save. Each of those is a piece of
its own: building.py (the model, LoRA, DDP or FSDP, compiling), batching.py (which pairs go
together), steps.py (one optimizer step), checkpoints.py, and evaluate() here.
"""

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from workers.ml import distributed
from workers.ml.batching import length_grouped_batches, token_budget_batches, training_batches
from workers.ml.building import compile_for_training, gathered_model, model_to_train, place, wrapped
from workers.ml.checkpoints import (
    find_checkpoint,
    load_checkpoint,
    remove_checkpoints,
    save_checkpoint,
)
from workers.ml.config import TrainConfig
from workers.ml.encoding import Encoded, encode_rows
from workers.ml.metrics import preference_metrics
from workers.ml.models import compute_device, is_decoder, load_tokenizer, save_model, starting_point
from workers.ml.packing import Rewards, pair_rewards
from workers.ml.probes import augmented_rows
from workers.ml.steps import PairLoss, optimizer_and_schedule, optimizer_step


class Cancelled(Exception):
    """The run was cancelled from the UI; the loop stopped after the current step."""


class Diverged(Exception):
    """The training loss became NaN or infinite: the run stops at that step."""


@dataclass
class Reporter:
    """How the loop talks to the outside: progress, log lines, whether to stop, and the
    settings it trains with (method=, learning_rate=), once chosen for the base model."""

    progress: Callable[[int, int, dict], None] = lambda step, total, metrics: None
    log: Callable[[str], None] = lambda line: None
    should_stop: Callable[[], bool] = lambda: False
    settings_chosen: Callable[..., None] = lambda **settings: None


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
    seed_everything(config.seed)
    device = compute_device()
    tokenizer = load_tokenizer(starting_point(config))
    model, config = model_to_train(config, tokenizer, reporter.log)
    reporter.settings_chosen(**chosen_settings(config))
    sharded = place(model, config, device)
    train_items, test_items = encoded_pairs(config, tokenizer, model, train_rows, test_rows,
                                            reporter.log)  # fmt: skip
    batches = training_batches(config, model, train_items, tokenizer.pad_token_id, device,
                               reporter.log)  # fmt: skip
    net = wrapped(model, sharded, device, reporter.log)
    optimizer, scheduler = optimizer_and_schedule(net, config, batches.steps, device)
    held_out = partial(evaluate, net, tokenizer, test_items, config.batch_size,
                       batches.evaluation_budget)  # fmt: skip
    step, untrained = resume_or_measure(output_dir, model, optimizer, scheduler, device,
                                        held_out, reporter, batches.steps)  # fmt: skip
    if batches.pack and distributed.world_size() > 1:
        reporter.log(f"each process packs its share into rows of {batches.row} tokens")
    batch_loss = PairLoss(net, batches, config, tokenizer.pad_token_id, device)
    net.train()
    if config.compile and batches.pack and device.type == "cuda":
        compile_for_training(model, batch_loss, batches.micro_batches[0], reporter.log)

    pace, last_eval = Pace(step, batches.steps), None
    while step < batches.steps:
        if distributed.any_process(reporter.should_stop(), device):
            raise Cancelled(f"cancelled at step {step}")
        pace.start(batches.tokens(batches.window(step)))
        figures = optimizer_step(net, batches.window(step), batch_loss, optimizer, scheduler)
        step += 1
        stop_if_diverged(figures[0], step, batches.steps, config.learning_rate)
        metrics = {"step": step, "loss": figures[0], "accuracy": figures[1],
                   "mean_reward_gap": figures[2], "learning_rate": scheduler.get_last_lr()[0],
                   **pace.figures(step)}  # fmt: skip
        if step % config.eval_every == 0 or step == batches.steps:
            metrics["eval"] = last_eval = held_out()
        reporter.progress(step, batches.steps, metrics)
        if step % config.checkpoint_every == 0 and step < batches.steps:
            save_checkpoint(output_dir, model, optimizer, scheduler, step, untrained, sharded)

    final = dict(last_eval) if last_eval is not None else held_out()  # the last step's
    # As an evaluation counts them: of the pairs measured; the training pairs apart.
    final["truncated_pairs"] = sum(it.truncated for it in test_items)
    final["truncated_training_pairs"] = sum(it.truncated for it in train_items)
    final["untrained"] = untrained
    final["settings"] = chosen_settings(config)
    save(model, config, tokenizer, output_dir, final, sharded)
    return final


def chosen_settings(config: TrainConfig) -> dict:
    """The settings a run may leave to the trainer, as the trainer set them."""
    return {"method": config.method, "learning_rate": config.learning_rate}


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def sample_rows(rows: list[dict], max_pairs: int | None, seed: int) -> list[dict]:
    """At most max_pairs rows, drawn at random (by the run's seed), in their original order:
    the first ones imported may all come from one source or one day."""
    if not max_pairs or max_pairs >= len(rows):
        return rows
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), max_pairs))]


def encoded_pairs(
    config: TrainConfig, tokenizer, model, train_rows: list[dict], test_rows: list[dict], log
) -> tuple[list[Encoded], list[Encoded]]:
    """The training pairs (at most max_pairs, with their edited copies where augment_edits
    asks for them) and the held-out ones, encoded for the model."""
    train_rows = sample_rows(train_rows, config.max_pairs, config.seed)
    if config.augment_edits:
        train_rows = train_rows + augmented_rows(train_rows)
        log(f"{len(train_rows) // 2} pairs also with one response padded or reformatted")
    decoder = is_decoder(model)
    train_items = encode_rows(tokenizer, train_rows, config.max_length, decoder=decoder)
    test_items = encode_rows(tokenizer, test_rows, config.max_length, decoder=decoder)
    cut = sum(it.truncated for it in train_items + test_items)
    log(
        f"{len(train_items)} training pairs, {len(test_items)} held out; {cut} pairs had "
        f"their prompt shortened to fit {config.max_length} tokens (none dropped)"
    )
    return train_items, test_items


@torch.no_grad()
def evaluate(
    net: Rewards, tokenizer, items: list[Encoded], batch_size: int, pack_budget: int = 0
) -> dict:
    """The figures of workers.ml.metrics on held-out pairs; packed like training when it is.
    In a run of several processes, they score the batches in turns and share the scores.
    (scoring.evaluate_pairs computes the same figures for a saved model, in parts that the
    scoring queue's workers share: it cannot batch all the pairs as one run batches them.)"""
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
        scores = pair_rewards(net, batch_items, tokenizer.pad_token_id, device, pack_budget)
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


def resume_or_measure(
    output_dir: Path, model, optimizer, scheduler, device, held_out, reporter, total_steps: int
) -> tuple[int, dict]:
    """The step to go on from and the untrained model's figures: those of the checkpoint an
    interrupted attempt left, restored into the model, optimizer and scheduler (and the
    random generators); else step 0, the untrained model measured now, the figure training
    has to beat."""
    checkpoint = find_checkpoint(output_dir)
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, device)
        reporter.log(f"resumed from the checkpoint at step {state['step']}")
        return state["step"], state["untrained"]
    untrained = held_out()
    reporter.progress(0, total_steps, {"step": 0, "eval": untrained})
    return 0, untrained


class Pace:
    """Real (non-pad) tokens trained on since this attempt started, all processes', the
    seconds the steps took, and the time left at that pace."""

    def __init__(self, first_step: int, total_steps: int):
        self.first_step, self.total_steps = first_step, total_steps
        self.tokens, self.seconds, self.started = 0, 0.0, 0.0

    def start(self, tokens: int) -> None:
        """A step begins, on this many tokens."""
        self.started = time.perf_counter()
        self.tokens += tokens

    def figures(self, step: int) -> dict:
        """The step `step` has ended: the figures it adds to the step's metrics."""
        self.seconds += time.perf_counter() - self.started
        figures = {
            "tokens": self.tokens,
            "train_seconds": self.seconds,
            "tokens_per_second": self.tokens / self.seconds,
            "eta_seconds": self.seconds / (step - self.first_step) * (self.total_steps - step),
        }
        if torch.cuda.is_available():  # rank 0's, with several processes
            figures["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return figures


def stop_if_diverged(loss: float, step: int, total_steps: int, learning_rate: float) -> None:
    if not math.isfinite(loss):
        raise Diverged(
            f"The training loss became {loss} at step {step} of {total_steps}: the run "
            f"diverged. Try a lower learning rate (this run's: {learning_rate:g})."
        )


def save(model, config: TrainConfig, tokenizer, output_dir: Path, final: dict, sharded: bool):
    """Rank 0 saves the trained model (gathered from every process's shards when sharded)
    and removes the checkpoints."""
    whole_model = gathered_model(model, config, tokenizer) if sharded else model
    if distributed.is_main():
        save_model(whole_model, tokenizer, config, output_dir, final)
        remove_checkpoints(output_dir)
