"""Training in several processes, one per GPU (CPU processes on the gloo backend in tests),
started by torch.distributed's own launcher (workers/ml/launch.py).

A run in N processes computes what the one-process run computes. Each micro-batch is split
between the processes; each scores its share, the rewards are gathered so that every
process computes the loss of the whole micro-batch, and each back-propagates through its own
share only. DDP (or FSDP) averages the gradients over the N processes, so the loss is scaled
by N: the gradient is the one-process run's, and so are the loss, accuracy and margin
logged. Held-out pairs are scored in turns by every process and gathered.

DDP keeps a whole copy of the model in each process; FSDP shards the weights, gradients and
optimizer state across them, for models whose training state does not fit one device.
Without a process group every function here is the one-process case.
"""

import math
from contextlib import nullcontext

import torch
import torch.distributed as dist

# A model is sharded (FSDP) when its weights, gradients and AdamW state would take more
# than this share of one device's memory; the rest is left to activations.
STATE_SHARE_OF_DEVICE = 0.6


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0 writes progress, logs, checkpoints and the model; the others only train."""
    return rank() == 0


def split_batch(batch_ids: list[int], tokens: list[int] | None = None) -> list[list[int]]:
    """Each process's pairs of a micro-batch: every Nth pair; or, given each pair's tokens
    (packed batches, one row of tokens a process), the pairs dealt longest first to the
    process with the fewest tokens so far, so that each row holds about 1/N of them."""
    world = world_size()
    if world == 1 or tokens is None:
        return [batch_ids[r::world] for r in range(world)]
    shares: list[list[int]] = [[] for _ in range(world)]
    loads = [0] * world
    for position in sorted(range(len(batch_ids)), key=lambda k: -tokens[k]):
        lightest = loads.index(min(loads))
        shares[lightest].append(batch_ids[position])
        loads[lightest] += tokens[position]
    return shares


def own_share(shares: list[list[int]]) -> list[int]:
    """This process's pairs. A process left without any (a micro-batch smaller than N)
    scores another's first pair and counts it for nothing: it must still take part in the
    backward pass that DDP and FSDP synchronise."""
    return shares[rank()] or next(share[:1] for share in shares if share)


def gather_rewards(
    chosen: torch.Tensor, rejected: torch.Tensor, sizes: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's chosen and rejected rewards, process by process: this process's own
    carry their gradient, the others' are constants. `sizes`: each process's share's."""
    world = len(sizes)
    if world == 1:
        return chosen, rejected
    mine = rank()
    own = sizes[mine]
    local = torch.zeros(2, max(sizes), device=chosen.device, dtype=chosen.dtype)
    local[0, :own] = chosen[:own].detach()
    local[1, :own] = rejected[:own].detach()
    pieces = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(pieces, local)
    whole = [
        torch.stack([chosen[:own], rejected[:own]]) if r == mine else pieces[r][:, : sizes[r]]
        for r in range(world)
    ]
    return torch.cat([w[0] for w in whole]), torch.cat([w[1] for w in whole])


def scaled_for_averaging(loss: torch.Tensor, chosen: torch.Tensor, own: int) -> torch.Tensor:
    """The loss to back-propagate: times N, since DDP and FSDP average the processes'
    gradients; a process whose share was empty adds its scores times zero, so that its
    backward pass reaches every weight and the synchronisation completes."""
    scaled = loss * world_size()
    return scaled if own else scaled + 0.0 * chosen.sum()


def evaluation_turns(batches: list) -> list[tuple[object, bool]]:
    """This process's held-out batches, with whether each counts: every process runs the same
    number of forward passes (FSDP gathers weights in each), the last turn padded with a
    batch whose scores are dropped."""
    world, mine = world_size(), rank()
    turns = []
    for turn in range(math.ceil(len(batches) / world)):
        index = turn * world + mine
        turns.append((batches[index], True) if index < len(batches) else (batches[0], False))
    return turns


def gather_objects(value) -> list:
    """One value from each process, in process order (the value itself when alone)."""
    if world_size() == 1:
        return [value]
    gathered = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def any_process(flag: bool, device: torch.device) -> bool:
    """Whether any process says so (stop, say): every process then acts together."""
    if world_size() == 1:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def needs_sharding(model, device: torch.device) -> bool:
    """Whether the model's training state (fp32 weights; gradients and two AdamW moments for
    the weights it trains) would crowd one GPU: FSDP then shards it. Never on a CPU."""
    if device.type != "cuda":
        return False
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    state_bytes = 16 * trained + 4 * frozen
    total = torch.cuda.get_device_properties(device).total_memory
    return state_bytes > STATE_SHARE_OF_DEVICE * total


def wrap(net: torch.nn.Module, blocks, sharded: bool, device: torch.device) -> torch.nn.Module:
    """The module each process trains: `net` itself when alone; else sharded by FSDP (each
    transformer layer, then the rest; bf16 weights on a GPU, gradients reduced in fp32) or
    replicated by DDP."""
    if world_size() == 1:
        return net
    if sharded:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        precision = MixedPrecisionPolicy(
            param_dtype=torch.bfloat16 if device.type == "cuda" else None,
            reduce_dtype=torch.float32,
        )
        for block in blocks or []:
            fully_shard(block, mp_policy=precision)
        return fully_shard(net, mp_policy=precision)
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        net,
        device_ids=[torch.cuda.current_device()] if device.type == "cuda" else None,
        broadcast_buffers=False,  # nothing in these models updates a buffer
    )


def without_sync(net: torch.nn.Module, last: bool):
    """DDP skips averaging gradients on all but the last micro-batch of an optimizer step;
    FSDP reduces every micro-batch's (its sharded gradients leave no room to wait)."""
    if last or not hasattr(net, "no_sync"):
        return nullcontext()
    return net.no_sync()
