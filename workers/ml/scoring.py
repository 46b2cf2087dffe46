"""Using a saved reward model: score (prompt, response) rows (which best-of-N ranks and
filters keep or drop: workers.ml.selection), evaluate on preference pairs, and audit.

Rows are encoded exactly as in training (same prompt rendering and truncation); a model
trained elsewhere whose tokenizer has a chat template reads each prompt and response as a
conversation through it, as it was trained to. They are sorted by length and run in
batches of about BATCH_TOKENS padded tokens, so little compute goes to padding and none to
per-row overhead. Scoring runs in bf16 on a GPU, and on a CPU with
bf16 matrix units (AMX), where it doubles the speed and moves rewards by about 1e-4; fp32
elsewhere. Evaluations compute in training's precision, as its held-out evaluation does
(fp32 weights, bf16 matrix products only on a GPU), so that a weakly separated pair is not
flipped by rounding and the figures match the run's. A worker keeps the last MAX_LOADED
models loaded.
"""

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from workers.ml.batching import longest_first_batches
from workers.ml.config import resolve_model_path
from workers.ml.encoding import Sequence, encode, encode_conversations, response_text
from workers.ml.metrics import preference_metrics, share_chosen_of
from workers.ml.models import compute_device, is_decoder, load_tokenizer
from workers.ml.packing import pad

BATCH_TOKENS = {"cuda": 16384, "cpu": 4096}  # padded tokens a batch; a CPU wants them in cache
MAX_BATCH_ROWS = 256
MAX_LOADED = 2
DEFAULT_MAX_LENGTH = 512

Progress = Callable[[int, int], None]


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX), on Linux."""
    try:
        return " amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


class Scorer:
    """A reward model loaded for inference. `training_precision`: fp32 weights and bf16
    matrix products on a GPU only, as training's held-out evaluation computes; otherwise as
    fast as the device allows (bf16 weights on a GPU, bf16 products on a CPU with AMX)."""

    def __init__(self, path: str, training_precision: bool = False):
        self.path = path
        self.device = compute_device()
        on_gpu = self.device.type == "cuda"
        self.cpu_bf16 = not on_gpu and not training_precision and cpu_has_bf16_units()
        self.autocast = self.cpu_bf16 or (on_gpu and training_precision)
        self.tokenizer = load_tokenizer(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve_model_path(path),
            num_labels=1,
            dtype=torch.bfloat16 if on_gpu and not training_precision else torch.float32,
        )
        if model.get_input_embeddings().num_embeddings < len(self.tokenizer):
            model.resize_token_embeddings(len(self.tokenizer))  # an untrained base model
        model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = model.to(self.device).eval()
        record = training_record(path)
        self.max_length = (record.get("config") or {}).get("max_length") or min(
            self.tokenizer.model_max_length, DEFAULT_MAX_LENGTH
        )
        self.reward_per_token = reward_per_token(record)
        # Not trained here (no training.json): the model's own chat format, where it has one.
        self.own_chat_format = not record and bool(getattr(self.tokenizer, "chat_template", None))

    def encode(self, prompts: list, responses: list[str]) -> list[Sequence]:
        if self.own_chat_format:
            return encode_conversations(self.tokenizer, prompts, responses, self.max_length)
        return encode(
            self.tokenizer,
            prompts,
            responses,
            self.max_length,
            decoder=is_decoder(self.model),
        )

    @torch.inference_mode()
    def rewards(self, sequences: list[Sequence], progress: Progress | None = None) -> np.ndarray:
        """One reward per sequence, in the order given; batches of similar length. Scores
        stay on the device until the end, so the next batch is padded while this one runs."""
        batches = longest_first_batches(
            [len(s.ids) for s in sequences], BATCH_TOKENS[self.device.type], MAX_BATCH_ROWS
        )
        scores, done = [], 0
        for chunk in batches:
            batch = pad([sequences[i] for i in chunk], self.tokenizer.pad_token_id, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                scores.append(self.model(**batch).logits[:, 0])
            done += len(chunk)
            if progress:
                progress(done, len(sequences))
        result = np.empty(len(sequences), dtype=np.float64)
        if scores:
            result[np.concatenate(batches)] = torch.cat(scores).float().cpu().numpy()
        return result

    def score(
        self, prompts: list, responses: list[str], progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rewards and response lengths in tokens."""
        sequences = self.encode(prompts, responses)
        tokens = np.array([s.response_tokens for s in sequences])
        return self.rewards(sequences, progress), tokens


def training_record(path: str) -> dict:
    """What the trainer saved beside a model (training.json: its config and final held-out
    metrics); empty for a model that was not trained here."""
    record = Path(path, "training.json")
    return json.loads(record.read_text()) if record.is_file() else {}


def reward_per_token(record: dict) -> float | None:
    """The slope of reward on response length over the held-out responses at the end of
    training (from a training_record), which length-adjusted ranking subtracts; None for a
    model trained before it was recorded (or not by us), whose rewards are ranked as they are."""
    return (((record.get("metrics") or {}).get("length")) or {}).get("reward_per_token")


_loaded: "OrderedDict[tuple[str, bool, float], Scorer]" = OrderedDict()


def scorer_for(path: str, training_precision: bool = False) -> Scorer:
    """The model at `path`, loaded once per worker and kept while it is among the last
    MAX_LOADED used; a model saved again at the same path is loaded afresh."""
    config = Path(resolve_model_path(path), "config.json")
    key = (path, training_precision, config.stat().st_mtime if config.exists() else 0.0)
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]
    scorer = Scorer(path, training_precision)
    _loaded[key] = scorer
    while len(_loaded) > MAX_LOADED:
        _loaded.popitem(last=False)
    return scorer


# ---------------------------------------------------------------------------------------
# What callers ask for


def pair_scores(scorer: Scorer, rows: list[dict], progress: Progress | None = None) -> dict:
    """What the held-out figures need of each row of prompt / chosen / rejected: both
    rewards, both responses' tokens, and whether either was cut to fit. Arrays in row order,
    so the scores of a file's parts, made apart, join up into the whole file's."""
    prompts = [r["prompt"] for r in rows]
    responses = [response_text(r[side]) for side in ("chosen", "rejected") for r in rows]
    sequences = scorer.encode(prompts + prompts, responses)
    rewards = scorer.rewards(sequences, progress)
    tokens = np.array([s.response_tokens for s in sequences], dtype=np.int64)
    truncated = np.array([s.truncated for s in sequences], dtype=bool)
    n = len(rows)
    return {
        "chosen": rewards[:n], "rejected": rewards[n:], "chosen_tokens": tokens[:n],
        "rejected_tokens": tokens[n:], "truncated": truncated[:n] | truncated[n:],
    }  # fmt: skip


def pair_metrics(rows: list[dict], scores: dict) -> dict:
    """The held-out figures of workers.ml.metrics from the rows and their pair_scores;
    calibration against people where rows carry their votes (agreement and n_votes)."""
    metrics = preference_metrics(
        scores["chosen"], scores["rejected"], scores["chosen_tokens"],
        scores["rejected_tokens"], [r.get("difficulty") or "" for r in rows],
        [share_chosen_of(r) for r in rows],
    )  # fmt: skip
    metrics["truncated_pairs"] = int(np.sum(scores["truncated"]))
    return metrics


def pair_results(rows: list[dict], scores: dict) -> list[dict]:
    """What the model made of each pair, in row order (what pair_metrics sums up): its
    `index` among the rows and its `pair_id` (the row's own, else that index), the rewards
    of `chosen` and `rejected` and their `gap` (chosen − rejected), whether it was `right`
    (a gap above 0, as accuracy counts), its `difficulty` (None where unknown), both
    responses' lengths in tokens as the model read them (as the length figures count) and
    whether the chosen one was the longer (False for equal lengths)."""
    chosen, rejected = np.asarray(scores["chosen"], float), np.asarray(scores["rejected"], float)
    chosen_tokens, rejected_tokens = scores["chosen_tokens"], scores["rejected_tokens"]
    gaps = chosen - rejected
    return [
        {
            "index": i,
            "pair_id": i if row.get("pair_id") in (None, "") else row["pair_id"],
            "chosen_reward": round(float(chosen[i]), 6),
            "rejected_reward": round(float(rejected[i]), 6),
            "gap": round(float(gaps[i]), 6),
            "right": bool(gaps[i] > 0),
            "difficulty": row.get("difficulty") or None,
            "chosen_tokens": int(chosen_tokens[i]),
            "rejected_tokens": int(rejected_tokens[i]),
            "chosen_longer": bool(chosen_tokens[i] > rejected_tokens[i]),
        }
        for i, row in enumerate(rows)
    ]


def evaluate_pairs(
    scorer: Scorer, rows: list[dict], progress: Progress | None = None, *, per_pair: bool = False
) -> dict:
    """The held-out figures of workers.ml.metrics for rows of prompt / chosen / rejected;
    with `per_pair`, each pair's result too (pair_results), under "pairs". (training.evaluate
    computes the figures for the model a run is training, in all its processes.)"""
    scores = pair_scores(scorer, rows, progress)
    metrics = pair_metrics(rows, scores)
    if per_pair:
        metrics["pairs"] = pair_results(rows, scores)
    return metrics


def audit_scores(scorer: Scorer, rows: list[dict], probes: list[str], check: bool) -> dict:
    """What workers.ml.probes.audit_figures needs of rows of prompt / chosen / rejected:
    the rewards of both responses and of each probe's edited rejected ones, in one pass so
    that batches mix them, and both responses' tokens. With `check`, also the first
    CONSISTENCY_PAIRS pairs scored again with rejected and chosen swapped (`again`)."""
    from workers.ml.probes import CONSISTENCY_PAIRS, audit_texts

    prompts, responses = audit_texts(rows, probes)
    n = len(rows)
    if check:
        k = min(CONSISTENCY_PAIRS, n)
        prompts += [r["prompt"] for r in rows[:k]] * 2
        responses += responses[n : n + k] + responses[:k]  # rejected first, then chosen
    rewards, tokens = scorer.score(prompts, responses)
    scores = {
        "chosen": rewards[:n], "rejected": rewards[n : 2 * n], "chosen_tokens": tokens[:n],
        "rejected_tokens": tokens[n : 2 * n],
        "again": rewards[(2 + len(probes)) * n :],
    }  # fmt: skip
    for position, probe in enumerate(probes, 2):
        scores[f"edited_{probe}"] = rewards[position * n : (position + 1) * n]
    return scores
