"""The model a run trains: the starting model with LoRA where the method is, on its device
or sharded across the run's processes, wrapped for DDP or FSDP, its layers compiled; and,
at the end of a sharded run, the whole trained model gathered back."""

import time
from collections.abc import Callable

import torch

from workers.ml import distributed
from workers.ml.config import TrainConfig
from workers.ml.models import choose_defaults, load_base_model, unwrapped, with_lora
from workers.ml.packing import Rewards


def model_to_train(
    config: TrainConfig, tokenizer, log: Callable[[str], None] = lambda line: None
) -> tuple[torch.nn.Module, TrainConfig]:
    """The starting model (workers.ml.models.load_base_model), LoRA-wrapped when the method
    is LoRA, and the config with the settings left open chosen for it (choose_defaults)."""
    model = load_base_model(config, tokenizer)
    config = choose_defaults(config, model)
    log(f"{config.method} fine-tuning, learning rate {config.learning_rate:g}")
    if config.init_from:
        log(f"starting from the reward model in {config.init_from}")
    if config.method == "lora":
        model = with_lora(model, config)
    return model, config


def place(model, config: TrainConfig, device: torch.device) -> bool:
    """Whether the run shards the model across its processes (FSDP: when asked, or by
    default when its training state would crowd one GPU); if not, the model is moved to the
    device (FSDP moves each process's shards there itself)."""
    sharded = distributed.world_size() > 1 and (
        config.sharded if config.sharded is not None else distributed.needs_sharding(model, device)
    )
    if not sharded:
        model.to(device)
    return sharded


def wrapped(
    model, sharded: bool, device: torch.device, log: Callable[[str], None]
) -> torch.nn.Module:
    """The model as the module that returns rewards (packing.Rewards), wrapped for the run's
    processes by DDP or FSDP (distributed.wrap)."""
    processes = distributed.world_size()
    if processes > 1:
        how = "FSDP, sharded" if sharded else "DDP, a whole copy in each"
        log(f"{processes} processes ({how}); each scores its share of every batch")
    return distributed.wrap(Rewards(model), repeated_blocks(model), sharded, device)


def repeated_blocks(model) -> torch.nn.ModuleList | None:
    """The model's stack of identical transformer layers."""
    for module in unwrapped(model).modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module) > 1
            and len({type(block) for block in module}) == 1
        ):
            return module
    return None


def compile_blocks(model, trial: Callable[[], None], log: Callable[[str], None]) -> bool:
    """Compile each transformer layer (one graph serves them all, since they share code),
    then run `trial`, a forward and backward pass of a real batch. Compiling fuses the
    layer's small element-wise kernels and takes the Python overhead out of each step; on
    any failure the layers go back to plain eager execution and training goes on."""
    blocks = repeated_blocks(model)
    if blocks is None:
        return False
    for block in blocks:
        block.compile(dynamic=False)
    try:
        trial()
    except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
        for block in blocks:
            block._compiled_call_impl = None
        torch._dynamo.reset()
        log(f"compiling the layers failed, training without: {str(error)[:300]}")
        return False
    finally:
        model.zero_grad(set_to_none=True)
    return True


def compile_for_training(model, batch_loss, first_batch: list[int], log) -> None:
    """compile_blocks, tried on the run's first micro-batch (batch_loss: a steps.PairLoss),
    saying how long it took."""
    log("compiling the layers (about a minute on a fresh machine)")
    started = time.perf_counter()
    trial = lambda: batch_loss(first_batch)[3].backward()  # noqa: E731
    if compile_blocks(model, trial, log):
        log(f"compiled the layers in {time.perf_counter() - started:.0f} s")


def gathered_model(model, config: TrainConfig, tokenizer):
    """On rank 0, a whole copy of a sharded model on the CPU: the base model built again (by
    the same seed, as the run built it) with the trained weights gathered into it; None on
    the other processes. Every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    trained = get_model_state_dict(model, options=options)
    if not distributed.is_main():
        return None
    torch.manual_seed(config.seed)
    whole, _ = model_to_train(config, tokenizer)
    _, unexpected = whole.load_state_dict(trained, strict=False)
    if unexpected:
        raise ValueError(f"gathered weights the model does not have: {unexpected[:3]}")
    return whole
