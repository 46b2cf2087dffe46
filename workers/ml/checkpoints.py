"""Checkpoints: what a resumed run needs to go on exactly as if it had never stopped."""

import os
import random
from pathlib import Path

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"


def _rng_state() -> dict:
    """Every random generator a step draws from (LoRA dropout, shuffles), as plain tensors and
    numbers so that the checkpoint loads with weights_only=True."""
    version, mt, gauss = random.getstate()
    numpy_state = np.random.get_state()
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)),
                  *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"].cpu())  # generator states live on the CPU
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _trainable_weights(model) -> dict:
    """Only the weights training changes: a LoRA run's adapters and score head, not the
    frozen base (which would make each checkpoint as large as the model, in fp32)."""
    return {name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(path: Path, model, optimizer, scheduler, step: int, untrained: dict) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(
        {
            "weights": _trainable_weights(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            "step": step,
            "untrained": untrained,
        },
        temporary,
    )
    os.replace(temporary, path)  # a worker killed mid-write leaves the previous checkpoint


def load_checkpoint(path: Path, model, optimizer, scheduler, device) -> dict:
    """Restore a checkpoint into the freshly built model, optimizer and scheduler; returns it
    (its step and the untrained model's figures). weights_only: a checkpoint runs no code."""
    state = torch.load(path, map_location=device, weights_only=True)
    if "weights" not in state:
        raise ValueError(
            f"The checkpoint {path} was written by an older version; delete it to start over."
        )
    missing, unexpected = model.load_state_dict(state["weights"], strict=False)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing):
        raise ValueError(
            f"The checkpoint {path} does not match this model "
            f"(missing {sorted(trainable & set(missing))[:3]}, unexpected {unexpected[:3]})."
        )
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return state
