"""Which pairs go through the model together, and a run's micro-batches and optimizer steps.

Three batchers, each for a job the others would do worse:
- length_grouped_batches: training's padded batches, a fixed number of pairs each (a step's
  size in pairs is a setting), of similar length, in a shuffled order;
- token_budget_batches: training's packed batches (decoders), as many pairs as fit a token
  budget, so that every batch is one row of one shape (compiled layers see no new shape);
- longest_first_batches: scoring's, as many sequences as fit a budget of padded tokens,
  longest first, neither pairs nor shuffled: throughput is all that counts there.
"""

import math
import random
from dataclasses import dataclass, field
from itertools import accumulate

from workers.ml import distributed
from workers.ml.config import TrainConfig
from workers.ml.encoding import Encoded
from workers.ml.packing import choose_packing


def length_grouped_batches(items: list[Encoded], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar length (little padding), in a shuffled order."""
    rng = random.Random(seed)
    order = sorted(
        range(len(items)),
        key=lambda i: (max(len(items[i].chosen.ids), len(items[i].rejected.ids)), rng.random()),
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def token_budget_batches(items: list[Encoded], budget: int, seed: int) -> list[list[int]]:
    """Pairs in shuffled order, as many to a batch as fit in `budget` tokens."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    batches, current, used = [], [], 0
    for i in order:
        size = items[i].tokens
        if current and used + size > budget:
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        batches.append(current)
    return batches


def longest_first_batches(lengths: list[int], budget: int, max_rows: int) -> list[list[int]]:
    """Indexes of sequences of these lengths, longest first, as many to a batch (at most
    max_rows, at least one) as fit in `budget` tokens once padded to the batch's longest."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, start = [], 0
    while start < len(order):
        width = lengths[order[start]]  # the longest left: sorted descending
        batches.append(order[start : start + max(1, min(max_rows, budget // width))])
        start += len(batches[-1])
    return batches


def default_token_budget(items: list[Encoded], batch_size: int) -> int:
    """batch_size pairs' worth of tokens on average, at least the longest pair, in 256s."""
    sizes = [it.tokens for it in items] or [1]
    budget = max(batch_size * sum(sizes) / len(sizes), max(sizes))
    return int(math.ceil(budget / 256) * 256)


def accumulation_windows(n_micro: int, accumulation: int) -> list[int]:
    """How many micro-batches each optimizer step averages: `accumulation`, and whatever is
    left for the last step, so that a short last window weighs as much as a full one."""
    return [min(accumulation, n_micro - start) for start in range(0, n_micro, accumulation)]


@dataclass
class TrainingBatches:
    """A run's micro-batches in the order it trains on them, how many of them each optimizer
    step averages (`windows`), and how they go through the model: padded, or packed (`pack`)
    in batches of `budget` tokens, each process's share of one in a row of `row` tokens."""

    items: list[Encoded]
    micro_batches: list[list[int]]
    windows: list[int]
    pack: bool
    budget: int
    row: int = field(init=False)
    starts: list[int] = field(init=False)  # each step's first micro-batch

    def __post_init__(self) -> None:
        self.starts = list(accumulate(self.windows, initial=0))
        self.row = self._row()

    @property
    def steps(self) -> int:
        return len(self.windows)

    @property
    def evaluation_budget(self) -> int:
        """Held-out pairs are packed as training packs them; 0: padded."""
        return self.budget if self.pack else 0

    def window(self, step: int) -> list[list[int]]:
        """The micro-batches of optimizer step `step` (from 0)."""
        return self.micro_batches[self.starts[step] : self.starts[step + 1]]

    def tokens(self, window: list[list[int]]) -> int:
        """Real (non-pad) tokens in a window, all processes' shares."""
        return sum(self.items[i].tokens for batch_ids in window for i in batch_ids)

    def shares(self, batch_ids: list[int]) -> list[list[int]]:
        """Each process's pairs of a micro-batch (distributed.split_batch)."""
        tokens = [self.items[i].tokens for i in batch_ids] if self.pack else None
        return distributed.split_batch(batch_ids, tokens)

    def _row(self) -> int:
        """Each process packs its share into a row of its own, of one length for the whole
        run (compiled layers see one shape): the longest share, where one process packs it
        all."""
        if not (self.pack and distributed.world_size() > 1):
            return self.budget
        shares = [share for batch_ids in self.micro_batches for share in self.shares(batch_ids)]
        longest = max(sum(self.items[i].tokens for i in share) for share in shares)
        return math.ceil(longest / 256) * 256


def training_batches(
    config: TrainConfig, model, items: list[Encoded], pad_id: int, device, log
) -> TrainingBatches:
    """The run's micro-batches over its epochs (a fractional last epoch takes its share),
    each epoch's drawn by the seed and the epoch's number; packed where choose_packing says
    so in every process."""
    pack = choose_packing(config, model, items, pad_id, device)
    pack = not distributed.any_process(not pack, device)  # every process batches alike
    budget = config.tokens_per_batch or default_token_budget(items, config.batch_size)
    if pack:
        log(f"packed batches of {budget} tokens, no padding")
    micro_batches = []
    for epoch in range(math.ceil(config.epochs)):
        if pack:
            batches = token_budget_batches(items, budget, config.seed + epoch)
        else:
            batches = length_grouped_batches(items, config.batch_size, config.seed + epoch)
        share = min(1.0, config.epochs - epoch)
        micro_batches += batches[: max(1, round(len(batches) * share))]
    windows = accumulation_windows(len(micro_batches), config.gradient_accumulation)
    return TrainingBatches(items, micro_batches, windows, pack, budget)
