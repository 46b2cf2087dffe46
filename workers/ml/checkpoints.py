"""Checkpoints: what a resumed run needs to go on exactly as if it had never stopped.

A run whose processes each hold the whole model (one process, or DDP) writes one file from
rank 0. A sharded run (FSDP) writes a folder in which each process saves its own shards
(torch.distributed.checkpoint), beside one file of what every process shares. Either resumes
in either layout, with any number of processes: weights and optimizer state are keyed by
parameter name (torch.distributed.checkpoint.state_dict), not by the layout's tensors.
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


def _state_dicts(model, optimizer, whole: bool) -> tuple[dict, dict]:
    """The model's and optimizer's state by parameter name: whole tensors on the CPU (rank 0's
    to write; every process must call it) or each process's own shards. Only the weights
    training changes: a LoRA run's adapters and score head, not the frozen base (which would
    make each checkpoint as large as the model, in fp32)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=whole, cpu_offload=whole, ignore_frozen_params=True)
    return get_state_dict(model, optimizer, options=options)


def _marker(path: Path) -> Path:
    """The file whose presence says the checkpoint is complete."""
    return path if path.name == CHECKPOINT else path / SHARED_STATE


def find_checkpoint(output_dir: Path) -> Path | None:
    """The run's latest complete checkpoint, if an earlier attempt left one. A run resumed in
    the other layout may have been stopped before it removed the checkpoint it resumed from."""
    complete = [
        path
        for path in (
            output_dir / CHECKPOINT,
            output_dir / SHARDED_CHECKPOINT,
            output_dir / f"{SHARDED_CHECKPOINT}.old",  # stopped while replacing the last one
        )
        if _marker(path).is_file()
    ]
    return max(complete, key=lambda path: _marker(path).stat().st_mtime_ns, default=None)


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
        if distributed.is_main():
            (output_dir / CHECKPOINT).unlink(missing_ok=True)  # the whole one it resumed from
        return
    weights, optimizer_state = _state_dicts(model, optimizer, whole=True)
    if distributed.is_main():
        path = output_dir / CHECKPOINT
        temporary = path.with_suffix(".tmp")
        torch.save({"weights": weights, "optimizer": optimizer_state, **shared}, temporary)
        os.replace(temporary, path)  # a worker killed mid-write leaves the previous checkpoint
        for suffix in ("", ".old"):  # the sharded one it resumed from
            shutil.rmtree(output_dir / f"{SHARDED_CHECKPOINT}{suffix}", ignore_errors=True)


def _save_sharded(output_dir: Path, model, optimizer, shared: dict) -> None:
    import torch.distributed.checkpoint as dcp

    final = output_dir / SHARDED_CHECKPOINT
    temporary, old = final.with_suffix(".tmp"), final.with_suffix(".old")
    if distributed.is_main():
        shutil.rmtree(temporary, ignore_errors=True)
    distributed.barrier()
    weights, optimizer_state = _state_dicts(model, optimizer, whole=False)
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
    """Restore a checkpoint, whole or sharded, into the freshly built model, optimizer and
    scheduler of either layout; returns what it holds besides weights (its step and the
    untrained model's figures). weights_only: a checkpoint runs no code."""
    if path.is_dir():
        state = torch.load(path / SHARED_STATE, weights_only=True)
        _load_sharded(path, model, optimizer)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if "weights" not in state:
            raise ValueError(
                f"The checkpoint {path} was written by an older version; delete it to start over."
            )
        optimizer_state = _by_name(model, optimizer, state["optimizer"])
        _set_state_dicts(path, model, optimizer, state["weights"], optimizer_state, whole=True)
    scheduler.load_state_dict(state["scheduler"])
    by_rank = state.get("rng_by_rank") or []
    same_world = len(by_rank) == distributed.world_size()
    _set_rng_state(by_rank[distributed.rank()] if same_world else state["rng"])
    return state


def _by_name(model, optimizer, optimizer_state: dict) -> dict:
    """An optimizer state keyed by parameter name; one written by position in the optimizer
    (as whole checkpoints once were) is renamed, positions taken in this optimizer's order."""
    if not any(isinstance(key, int) for key in optimizer_state["state"]):
        return optimizer_state
    _, current = _state_dicts(model, optimizer, whole=False)
    names = [name for group in current["param_groups"] for name in group["params"]]
    return {
        "state": {names[i]: value for i, value in optimizer_state["state"].items()},
        "param_groups": [
            {**group, "params": [names[i] for i in group["params"]]}
            for group in optimizer_state["param_groups"]
        ],
    }


def _load_sharded(path: Path, model, optimizer) -> None:
    import torch.distributed.checkpoint as dcp

    # Read into this run's own tensors, whole or sharded: torch.distributed.checkpoint
    # reads each process's part of every saved tensor, whatever the shards it was saved in.
    weights, optimizer_state = _state_dicts(model, optimizer, whole=False)
    saved = {"weights": weights, "optimizer": optimizer_state}
    dcp.load(saved, checkpoint_id=path)
    _set_state_dicts(path, model, optimizer, saved["weights"], saved["optimizer"], whole=False)


def _set_state_dicts(
    path: Path, model, optimizer, weights: dict, optimizer_state: dict, whole: bool
) -> None:
    """Load state by parameter name; whole tensors are cut into this process's shards where
    the model is sharded. Frozen weights are not in a checkpoint; trainable ones must be."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    missing, unexpected = set_state_dict(
        model, optimizer, model_state_dict=weights, optim_state_dict=optimizer_state,
        options=StateDictOptions(full_state_dict=whole, ignore_frozen_params=True, strict=False),
    )  # fmt: skip
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    if unexpected or trainable & set(missing):
        raise ValueError(
            f"The checkpoint {path} does not match this model "
            f"(missing {sorted(trainable & set(missing))[:3]}, unexpected {unexpected[:3]})."
        )
