"""One optimizer step: each micro-batch's forward pass (chosen and rejected together), the
Bradley-Terry loss over the whole micro-batch, the backward pass, and AdamW on the cosine
schedule; with the step's loss, accuracy and mean reward gap over all of its pairs."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers.optimization import get_cosine_schedule_with_warmup

from workers.ml import distributed
from workers.ml.batching import TrainingBatches
from workers.ml.config import TrainConfig
from workers.ml.losses import bradley_terry_loss
from workers.ml.packing import pair_rewards


@dataclass
class PairLoss:
    """A micro-batch's loss and rewards, all of its pairs', and what this process
    back-propagates: the loss through its own share's rewards. Each process scores its share
    of the micro-batch; the rewards are gathered, so that each computes the loss of the
    whole micro-batch (workers.ml.distributed)."""

    net: torch.nn.Module
    batches: TrainingBatches
    config: TrainConfig
    pad_id: int
    device: torch.device

    def __call__(self, batch_ids: list[int]) -> tuple[torch.Tensor, ...]:
        items = self.batches.items
        split = self.batches.shares(batch_ids)
        own_items = [items[i] for i in distributed.own_share(split)]
        row = self.batches.row if self.batches.pack else 0
        scores = pair_rewards(self.net, own_items, self.pad_id, self.device, row)
        sizes = [len(share) for share in split]
        own_chosen, own_rejected = scores[: len(own_items)], scores[len(own_items) :]
        chosen, rejected = distributed.gather_rewards(own_chosen, own_rejected, sizes)
        whole = [items[i] for share in split for i in share]
        loss = bradley_terry_loss(
            chosen,
            rejected,
            margin=self._tensor([it.margin for it in whole]) if self.config.margin_loss else None,
            center_rewards=self.config.center_rewards,
            length_penalty=self.config.length_penalty,
            chosen_tokens=self._tensor([it.chosen.response_tokens for it in whole]),
            rejected_tokens=self._tensor([it.rejected.response_tokens for it in whole]),
        )
        own = sizes[distributed.rank()]
        return loss, chosen, rejected, distributed.scaled_for_averaging(loss, own_chosen, own)

    def _tensor(self, values: list) -> torch.Tensor:
        return torch.tensor(values, device=self.device)


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
    pairs') and what this process back-propagates (a PairLoss)."""
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


def optimizer_and_schedule(net: torch.nn.Module, config: TrainConfig, total_steps: int, device):
    """AdamW over the weights the run trains, its learning rate warmed up over
    warmup_ratio of the steps, then down a cosine."""
    parameters = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, fused=device.type == "cuda"
    )  # fused: one kernel for the whole update on a GPU
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    return optimizer, scheduler


def optimizer_step(net, window: list[list[int]], batch_loss: PairLoss, optimizer, scheduler):
    """Train on one window of micro-batches: gradients accumulated, clipped to a norm of 1,
    AdamW's update and the schedule's next rate. Returns the step's loss, accuracy and mean
    reward gap, waiting for the device once a step (so that its timings are real)."""
    figures = accumulate_gradients(net, window, batch_loss)
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return figures.tolist()
