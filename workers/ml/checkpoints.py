"""Checkpoints: what a resumed run needs to go on exactly as if it had never stopped.

A run whose processes each hold the whole model (one process, or DDP) writes one file from
rank 0. A sharded run (FSDP) writes a folder in which each process saves its own shards
(torch.distributed.checkpoint), beside one file of what every process shares; it can be
resumed by any number of processes.
"""

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from workers.ml import distributed

CHECKPOINT = "checkpoint.pt"
SHARDED_CHECKPOINT = "checkpoint-sharded"
SHARED_STATE = "state.pt"  # in a sharded checkpoint: written last, so it marks it complete


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


def find_checkpoint(output_dir: Path) -> Path | None:
    """The run's checkpoint, if an earlier attempt left a complete one."""
    for path in (
        output_dir / CHECKPOINT,
        output_dir / SHARDED_CHECKPOINT,
        output_dir / f"{SHARDED_CHECKPOINT}.old",  # stopped while replacing the last one
    ):
        if path.is_file() or (path / SHARED_STATE).is_file():
            return path
    return None


def remove_checkpoints(output_dir: Path) -> None:
    (output_dir / CHECKPOINT).unlink(missing_ok=True)
    for suffix in ("", ".old", ".tmp"):
        shutil.rmtree(output_dir / f"{SHARDED_CHECKPOINT}{suffix}", ignore_errors=True)


def save_checkpoint(
    output_dir: Path, model, optimizer, scheduler, step: int, untrained: dict, sharded: bool
) -> None:
    """Called by every process of the run."""
    by_rank = distributed.gather_objects(_rng_state())
    shared = {
        "scheduler": scheduler.state_dict(),
        "rng": by_rank[0],  # what a run of another number of processes resumes with
        "rng_by_rank": by_rank,
        "step": step,
        "untrained": untrained,
    }
    if sharded:
        _save_sharded(output_dir, model, optimizer, shared)
        return
    if distributed.is_main():
        path = output_dir / CHECKPOINT
        temporary = path.with_suffix(".tmp")
        torch.save(
            {"weights": _trainable_weights(model), "optimizer": optimizer.state_dict(), **shared},
            temporary,
        )
        os.replace(temporary, path)  # a worker killed mid-write leaves the previous checkpoint


def _sharded_state(model, optimizer) -> tuple[dict, dict]:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(ignore_frozen_params=True))


def _save_sharded(output_dir: Path, model, optimizer, shared: dict) -> None:
    import torch.distributed.checkpoint as dcp

    final = output_dir / SHARDED_CHECKPOINT
    temporary, old = final.with_suffix(".tmp"), final.with_suffix(".old")
    if distributed.is_main():
        shutil.rmtree(temporary, ignore_errors=True)
    distributed.barrier()
    weights, optimizer_state = _sharded_state(model, optimizer)
    dcp.save({"weights": weights, "optimizer": optimizer_state}, checkpoint_id=temporary)
    distributed.barrier()  # every process's shards are written
    if distributed.is_main():
        torch.save(shared, temporary / SHARED_STATE)
        if final.exists():
            final.rename(old)
        temporary.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()


def load_checkpoint(path: Path, model, optimizer, scheduler, device) -> dict:
    """Restore a checkpoint into the freshly built (and, for a sharded one, sharded) model,
    optimizer and scheduler; returns what it holds besides weights (its step and the
    untrained model's figures). weights_only: a checkpoint runs no code."""
    if path.is_dir():
        state = torch.load(path / SHARED_STATE, weights_only=True)
        _load_sharded(path, model, optimizer)
    else:
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
    by_rank = state.get("rng_by_rank") or []
    same_world = len(by_rank) == distributed.world_size()
    _set_rng_state(by_rank[distributed.rank()] if same_world else state["rng"])
    return state


def _load_sharded(path: Path, model, optimizer) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    weights, optimizer_state = _sharded_state(model, optimizer)
    saved = {"weights": weights, "optimizer": optimizer_state}
    dcp.load(saved, checkpoint_id=path)
    set_state_dict(
        model, optimizer,
        model_state_dict=saved["weights"], optim_state_dict=saved["optimizer"],
        options=StateDictOptions(ignore_frozen_params=True, strict=False),
    )  # fmt: skip
