"""The Bradley-Terry loss on chosen/rejected rewards and its optional terms."""

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    *,
    margin: torch.Tensor | None = None,
    center_rewards: float = 0.0,
    length_penalty: float = 0.0,
    chosen_tokens: torch.Tensor | None = None,
    rejected_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """-log σ(r_c − r_r − m), plus optional terms.

    margin: per-pair margins (margin-aware loss). center_rewards: weight of mean((r_c + r_r)²),
    keeping rewards near zero. length_penalty: weight of the squared covariance of reward with
    standardised response length over the batch's responses, against verbosity hacking.
    """
    difference = chosen - rejected
    loss = -F.logsigmoid(difference - (margin if margin is not None else 0.0)).mean()
    if center_rewards:
        loss = loss + center_rewards * ((chosen + rejected) ** 2).mean()
    if length_penalty and chosen_tokens is not None and rejected_tokens is not None:
        lengths = torch.cat([chosen_tokens, rejected_tokens]).to(chosen.dtype)
        loss = loss + length_penalty * squared_length_covariance(
            torch.cat([chosen, rejected]), lengths
        )
    return loss


def squared_length_covariance(rewards: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The squared covariance of rewards with standardised lengths over the batch: how many
    reward units go with one standard deviation of length, squared. Unlike a term linear in
    the reward gap it is never negative, so it cannot pull the loss below zero or pay for a
    widening gap; unlike a correlation its pull fades as rewards shrink, so it does not
    explode while rewards are still close together early in training. Zero when the lengths
    do not vary."""
    spread = lengths.std(unbiased=False)
    if not spread:
        return rewards.new_zeros(())
    standard = (lengths - lengths.mean()) / spread
    return ((rewards - rewards.mean()) * standard).mean().pow(2)
