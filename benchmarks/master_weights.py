"""One optimizer step on a base model saved in bf16, as every Qwen and Llama checkpoint on
the Hub is: the share of its trained weights (layers and score head) that the step moves.

Side by side in one run: the trainer (workers.ml.training.train, one step of full
fine-tuning at lr 1e-5, no warm-up), and the same AdamW step in a plain loop after loading
the checkpoint as transformers does by default (dtype="auto": the bf16 the file was saved
in, no fp32 master weights) and after an fp32 load (as TRL's RewardTrainer loads). A bf16
weight of size 0.02 moves only for updates above about 1e-4, so at 1e-5 most stay put.

    .venv/bin/python benchmarks/master_weights.py
"""

import os
import sys
import tempfile
from pathlib import Path

import django
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")  # the test factories'
django.setup()

from tests.factories import separable_rows  # noqa: E402
from tests.workers.decoder_models import decoder_model  # noqa: E402
from workers.ml import training  # noqa: E402
from workers.ml.config import TrainConfig  # noqa: E402
from workers.ml.encoding import encode_rows  # noqa: E402
from workers.ml.models import load_tokenizer  # noqa: E402
from workers.ml.packing import collate  # noqa: E402

LEARNING_RATE = 1e-5


def share_moved(before: dict, after: dict) -> float:
    names = [n for n in before if "embed" not in n]
    moved = sum(int((after[n].float() != before[n].float()).sum()) for n in names)
    return moved / sum(before[n].numel() for n in names)


def plain_step(base: str, rows: list[dict], dtype) -> dict:
    """One AdamW step of the Bradley-Terry loss on all rows; the weights after it."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=dtype)
    tokenizer = load_tokenizer(base)
    model.config.pad_token_id = tokenizer.pad_token_id
    items = encode_rows(tokenizer, rows, 48, decoder=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    rewards = model(**collate(items, tokenizer.pad_token_id, torch.device("cpu"))).logits[:, 0]
    chosen, rejected = rewards[: len(items)], rewards[len(items) :]
    (-F.logsigmoid(chosen.float() - rejected.float()).mean()).backward()
    optimizer.step()
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


def main() -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rows = separable_rows(20)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        fp32 = decoder_model(folder / "fp32", "qwen")
        model = AutoModelForSequenceClassification.from_pretrained(fp32, dtype=torch.float32)
        model.to(torch.bfloat16).save_pretrained(folder / "bf16")
        AutoTokenizer.from_pretrained(fp32).save_pretrained(folder / "bf16")
        base = str(folder / "bf16")
        before = load_file(f"{base}/model.safetensors")

        config = TrainConfig(base_model=base, method="full", learning_rate=LEARNING_RATE,
                             batch_size=16, epochs=1, warmup_ratio=0.0, max_length=48)  # fmt: skip
        training.train(config, rows[:16], rows[16:], folder / "run")
        trained = load_file(folder / "run" / "model" / "model.safetensors")
        dtypes = {str(t.dtype).removeprefix("torch.") for t in trained.values()}
        print(f"base model saved in bf16; one step at lr {LEARNING_RATE:g}")
        auto = plain_step(base, rows[:16], "auto")
        full = plain_step(base, rows[:16], torch.float32)
        table = [
            ("prefhub `train`", "fp32", share_moved(before, trained), "/".join(dtypes)),
            ("plain loop, transformers' default load", "bf16", share_moved(before, auto), "bf16"),
            ("plain loop, fp32 load (as TRL)", "fp32", share_moved(before, full), "fp32"),
        ]
        print("| trainer | weights trained in | share of weights moved | saved as |")
        print("|---|---|---|---|")
        for name, kind, share, saved in table:
            print(f"| {name} | {kind} | {share:.1%} | {saved} |")


if __name__ == "__main__":
    main()
