"""The loss's optional terms under training, not only their value: the length penalty must
stay bounded, keep the preferred response preferred, and take length out of the reward."""

import math

import torch

from workers.ml import losses


def verbose_pairs(n: int = 512, seed: int = 0):
    """Features (quality, length) of chosen and rejected responses where the longer response
    usually wins: chosen has the better content, and is longer in 80% of pairs. One pair in
    ten has its labels flipped, as annotators do, so the plain loss has a finite optimum."""
    g = torch.Generator().manual_seed(seed)
    longer_wins = torch.rand(n, generator=g) < 0.8
    short, long = 20 + 30 * torch.rand(n, generator=g), 80 + 60 * torch.rand(n, generator=g)
    chosen_tokens = torch.where(longer_wins, long, short)
    rejected_tokens = torch.where(longer_wins, short, long)
    flipped = torch.rand(n, generator=g) < 0.1
    chosen_quality = torch.where(flipped, 0.0, 1.0)
    chosen = torch.stack([chosen_quality, chosen_tokens / 100], dim=1)
    rejected = torch.stack([1 - chosen_quality, rejected_tokens / 100], dim=1)
    return chosen, rejected, chosen_tokens, rejected_tokens, flipped


def fit(length_penalty: float, steps: int = 1000):
    chosen, rejected, chosen_tokens, rejected_tokens, flipped = verbose_pairs()
    torch.manual_seed(0)
    reward = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(reward.parameters(), lr=0.05)
    for _ in range(steps):
        loss = losses.bradley_terry_loss(
            reward(chosen).squeeze(-1), reward(rejected).squeeze(-1),
            length_penalty=length_penalty, chosen_tokens=chosen_tokens,
            rejected_tokens=rejected_tokens,
        )  # fmt: skip
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        r_chosen, r_rejected = reward(chosen).squeeze(-1), reward(rejected).squeeze(-1)
    gap = r_chosen - r_rejected
    lengths = torch.cat([chosen_tokens, rejected_tokens])
    correlation = torch.corrcoef(torch.stack([torch.cat([r_chosen, r_rejected]), lengths]))[0, 1]
    return {
        "loss": loss.item(),
        "largest_gap": gap.abs().max().item(),
        "preferred": (gap[~flipped] > 0).float().mean().item(),
        "correlation": correlation.item(),
    }


def test_length_penalty_stays_bounded_keeps_the_preference_and_removes_length():
    plain = fit(length_penalty=0.0)
    penalised = fit(length_penalty=1.0)
    strong = fit(length_penalty=10.0)
    assert plain["correlation"] > 0.3  # without the penalty, the reward follows length
    for figures in (penalised, strong):
        assert figures["loss"] < math.log(2)  # below an untrained model's: it learned
        assert figures["largest_gap"] < 20  # no gap running off to infinity
        assert figures["preferred"] > 0.95  # the better response still wins
        assert abs(figures["correlation"]) < abs(plain["correlation"]) / 2
    assert abs(strong["correlation"]) < 0.1
