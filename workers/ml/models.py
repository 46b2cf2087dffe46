"""Loading a base model for training or scoring, choosing the method and learning rate for
it, LoRA, and saving the trained model in the Hugging Face format."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from workers.ml.config import (
    AUTO,
    LEARNING_RATES,
    LORA_FROM_PARAMETERS,
    TrainConfig,
    lora_targets_problem,
    resolve_model_path,
)
from workers.ml.encoding import recipe


def load_tokenizer(name: str):
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name))
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"  # drop the start of the prompt, never the response
    # A pad token that is also the end-of-sequence token would hide the score's position.
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return tokenizer


def starting_point(config: TrainConfig) -> str:
    """Where a run's weights and tokenizer come from: the reward model it continues, or the
    base model."""
    return config.init_from or resolve_model_path(config.base_model)


def load_base_model(config: TrainConfig, tokenizer):
    """The starting model with a one-output score head (new for a base model, trained for a
    reward model continued from), its pad token set and dropout off."""
    # fp32 master weights whatever dtype the checkpoint was saved in (most decoders on the
    # Hub are bf16): AdamW's updates of 1e-5 vanish in bf16 weights. On a GPU the forward
    # and backward passes still run in bf16 under autocast.
    model = AutoModelForSequenceClassification.from_pretrained(
        starting_point(config), num_labels=1, dtype=torch.float32
    )
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    # No dropout in the base model: chosen and rejected would each see their own random
    # mask, and the reward difference would carry that noise (LoRA keeps its own dropout).
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    if config.gradient_checkpointing:
        model.activation_checkpointing_enable()  # non-reentrant: works under DDP and FSDP
    return model


def choose_defaults(config: TrainConfig, base_model) -> TrainConfig:
    """The settings left to be chosen ("auto" method, no learning rate), chosen for this base
    model: full fine-tuning below LORA_FROM_PARAMETERS, LoRA from there, and the learning
    rate for that method and kind of model (LEARNING_RATES). Settings given are kept."""
    method = config.method
    if method == AUTO:
        parameters = sum(p.numel() for p in base_model.parameters())
        method = "full" if parameters < LORA_FROM_PARAMETERS else "lora"
    kind = "decoder" if is_decoder(base_model) else "encoder"
    learning_rate = config.learning_rate or LEARNING_RATES[method, kind]
    return replace(config, method=method, learning_rate=learning_rate)


def unwrapped(model):
    """The transformers model inside a PEFT wrapper (LoRA layers stay injected)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def check_lora_targets(model, targets: list[str]) -> None:
    problem = lora_targets_problem(
        targets, {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    )
    if problem:
        raise ValueError(problem)


def with_lora(model, config: TrainConfig):
    from peft import LoraConfig, TaskType, get_peft_model

    targets = config.lora_target_modules or None  # None: PEFT's for the architecture
    if targets:
        check_lora_targets(model, targets)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # keeps the score head trainable
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
    )
    return get_peft_model(model, lora)


def reads_last_token(model) -> bool:
    """Whether the model's sequence-classification head reads the reward at the last real
    token (a decoder's `score`), where an encoder's (BERT-style `classifier`) reads the first."""
    return hasattr(unwrapped(model), "score")


def is_decoder(model) -> bool:
    """Whether the model is a decoder, whose input is laid out as a conversation closed by an
    end-of-sequence token; an encoder reads prompt and response as a pair. The decoders with
    a sequence-classification head are those whose head reads the last token."""
    return reads_last_token(model)


def is_decoder_at(path: str) -> bool:
    """is_decoder for the model saved at `path`, built on the meta device: its architecture
    decides, and no weights are read."""
    config = AutoConfig.from_pretrained(resolve_model_path(path), num_labels=1)
    with torch.device("meta"):
        return is_decoder(AutoModelForSequenceClassification.from_config(config))


def compute_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def save_model(
    model, tokenizer, config: TrainConfig, output_dir: Path, metrics: dict, card: str = ""
) -> Path:
    """save_pretrained (safetensors) with the tokenizer; LoRA runs keep their adapter too and
    save the merged model, which loads with plain transformers."""
    target = output_dir / "model"
    if unwrapped(model).config._attn_implementation == "flex_attention":
        unwrapped(model).set_attn_implementation("sdpa")  # loads anywhere, CPU included
    if config.method == "lora":
        model.save_pretrained(output_dir / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / "training.json").write_text(
        json.dumps({"config": asdict(config), "metrics": metrics}, indent=2)
    )
    card = card or model_card(config, metrics, decoder=is_decoder(model))
    (target / "README.md").write_text(card)
    return target


def model_card(
    config: TrainConfig,
    metrics: dict,
    dataset: str = "",
    sha256: str = "",
    *,
    decoder: bool | None = None,
) -> str:
    """A Hugging Face model card: metadata the Hub reads (library, task, base model where it
    is a Hub id), then how to score with plain transformers (the layout training used, for
    an encoder or, by default as the starting model is, a decoder), the base model, dataset
    version, settings and held-out figures."""
    from huggingface_hub import ModelCard, ModelCardData

    if decoder is None:
        decoder = is_decoder_at(starting_point(config))
    slope = (metrics.get("length") or {}).get("reward_per_token")
    on_hub = "/" in config.base_model and not Path(config.base_model).exists()
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["reward-model", "bradley-terry"],
        base_model=config.base_model if on_hub else None,
    )
    body = [
        "# Reward model",
        "",
        "A scalar reward model (sequence classification with one output) trained with the",
        "Bradley-Terry loss on chosen/rejected pairs.",
        "",
        f"- Base model: `{config.base_model}` ({config.method})",
        *(
            [f"- Trained on from the reward model in `{config.init_from}`"]
            if config.init_from
            else []
        ),
        *([f"- Dataset version: `{dataset}`, sha256 `{sha256}`"] if dataset else []),
        "",
        "## Scoring",
        "",
        "The reward of a response to a prompt, with the input laid out as in training",
        "(a text-classification pipeline given one text would score another input):",
        "",
        "```python",
        recipe(config.max_length, decoder=decoder).rstrip(),
        "```",
        "",
        *(
            [
                "Ranking by length-adjusted reward (best-of-N with length normalisation)",
                f"subtracts {slope:.6g} per response token (as kept to fit), the reward's",
                "trend with length on the held-out pairs.",
                "",
            ]
            if slope
            else []
        ),
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(asdict(config), indent=2),
        "```",
        "",
        "## Held-out metrics",
        "",
        "```json",
        json.dumps(metrics, indent=2),
        "```",
        "",
    ]
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(body)))
