"""Batches for the model: pairs of similar length padded together, or packed end to end into
rows of a fixed token budget (decoders), and the rewards read from either."""

import math
import random

import torch

from workers.ml.config import TrainConfig
from workers.ml.encoding import Encoded, Sequence
from workers.ml.models import unwrapped


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


def default_token_budget(items: list[Encoded], batch_size: int) -> int:
    """batch_size pairs' worth of tokens on average, at least the longest pair, in 256s."""
    sizes = [it.tokens for it in items] or [1]
    budget = max(batch_size * sum(sizes) / len(sizes), max(sizes))
    return int(math.ceil(budget / 256) * 256)


def collate_packed(items: list[Encoded], budget: int, pad_id: int, device) -> tuple[dict, list]:
    """Chosen then rejected sequences end to end in one row of `budget` tokens, with
    position ids restarting at each sequence: no padding inside, one fixed shape.
    Returns the batch and the index of each sequence's last token."""
    ids, positions, ends = [], [], []
    for sequence in [it.chosen.ids for it in items] + [it.rejected.ids for it in items]:
        ids += sequence
        positions += range(len(sequence))
        ends.append(len(ids) - 1)
    filler = budget - len(ids)
    if filler > 0:  # a segment of its own, so that no real sequence attends to it
        ids += [pad_id] * filler
        positions += range(filler)
    batch = {
        "input_ids": torch.tensor([ids], device=device),
        "position_ids": torch.tensor([positions], device=device),
    }
    return batch, torch.tensor(ends, device=device)


def pad(sequences: list[Sequence], pad_id: int, device) -> dict:
    """Right-padded input ids, attention mask and (for pair encoders) token type ids."""
    width = max(len(s.ids) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    token_types = torch.zeros_like(input_ids) if sequences[0].types is not None else None
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence.ids)] = torch.tensor(sequence.ids)
        attention[row, : len(sequence.ids)] = 1
        if token_types is not None:
            token_types[row, : len(sequence.types)] = torch.tensor(sequence.types)
    batch = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}
    if token_types is not None:
        batch["token_type_ids"] = token_types.to(device)
    return batch


def collate(items: list[Encoded], pad_id: int, device) -> dict:
    """Chosen then rejected sequences, right-padded, as one batch of 2 × pairs."""
    return pad([it.chosen for it in items] + [it.rejected for it in items], pad_id, device)


def supports_packing(model) -> bool:
    """Decoders with a `score` head: transformers reads packed position_ids as one causal
    mask per sequence for them. Encoders (BERT-style) attend both ways and need padding."""
    base = unwrapped(model)
    return (
        hasattr(base, "score")
        and not base.config.is_encoder_decoder
        and hasattr(base, base.base_model_prefix)
    )


def rewards(model, batch: dict) -> torch.Tensor:
    return model(**batch).logits.squeeze(-1).float()


def packed_rewards(model, batch: dict, ends: torch.Tensor) -> torch.Tensor:
    """Scores of packed sequences, each read at its own last token. Without an attention
    mask and with the cache off, transformers gives each sequence its own causal mask."""
    base = unwrapped(model)
    backbone = getattr(base, base.base_model_prefix)
    hidden = backbone(**batch, use_cache=False).last_hidden_state
    return base.score(hidden[0, ends]).squeeze(-1).float()


class Rewards(torch.nn.Module):
    """The model as one module that returns rewards, of padded or (with `ends`) packed
    batches: what DDP and FSDP wrap, so that their hooks run on every forward pass."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, ends: torch.Tensor | None = None) -> torch.Tensor:
        if ends is None:
            return rewards(self.model, batch)
        return packed_rewards(self.model, batch, ends)


def packing_agrees(model, items: list[Encoded], pad_id: int) -> bool:
    """Packed and padded scores of a few pairs match: the guard before training packed."""
    device = next(model.parameters()).device
    sample = items[:4]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        padded = rewards(model, collate(sample, pad_id, device))
        batch, ends = collate_packed(sample, 0, pad_id, device)
        packed = packed_rewards(model, batch, ends)
    model.train(was_training)
    return torch.allclose(padded, packed, rtol=1e-3, atol=1e-3)


def choose_packing(config: TrainConfig, model, items: list[Encoded], pad_id: int, device) -> bool:
    """Pack when asked (or, by default, for decoders on a GPU), the model supports it, and
    packed scores match padded ones; on a GPU, with flex_attention's block-sparse masks."""
    wanted = config.packing if config.packing is not None else device.type == "cuda"
    if not (wanted and supports_packing(model) and packing_agrees(model, items, pad_id)):
        return False
    if device.type == "cuda":
        unwrapped(model).set_attn_implementation("flex_attention")
    return True
