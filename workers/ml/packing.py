"""Pairs as tensors for the model: padded, or packed end to end into one row of a fixed
token budget (decoders), and the rewards read from either. Which pairs go together is
workers.ml.batching's."""

import torch

from workers.ml.config import TrainConfig
from workers.ml.encoding import Encoded, Sequence
from workers.ml.models import reads_last_token, unwrapped


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
    """Decoders whose head reads the last token: transformers reads packed position_ids as
    one causal mask per sequence for them, and each sequence's reward is read at its own last
    token. Encoders (BERT-style) attend both ways and need padding."""
    base = unwrapped(model)
    return (
        reads_last_token(base)
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


def pair_rewards(net: Rewards, items: list[Encoded], pad_id: int, device, row: int = 0):
    """The chosen then the rejected rewards of `items`, packed into one row of `row` tokens
    or (row 0) padded; bf16 matrix products on a GPU, over fp32 weights."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        if row:
            return net(*collate_packed(items, row, pad_id, device))
        return net(collate(items, pad_id, device))


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
