"""The trainer on the CPU: loss values, learning on separable pairs, saving, resuming, cancel."""

import math
import random

import pytest
import torch

from workers import training

WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "pear", "plum", "berry"]


def separable_rows(n: int, seed: int = 0) -> list[dict]:
    """Pairs a reward model can tell apart: the chosen answer is polite, the rejected curt."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fruit = " ".join(rng.choices(WORDS, k=rng.randint(3, 10)))
        rows.append(
            {
                "prompt": f"Question {i}: name some fruit.",
                "chosen": f"Gladly! {fruit}. I hope that helps, thank you for asking.",
                "rejected": f"No. {' '.join(rng.choices(WORDS, k=rng.randint(3, 10)))}",
                "margin": 0.5,
                "difficulty": rng.choice(["easy", "medium", "hard"]),
            }
        )
    return rows


def test_bradley_terry_loss_matches_hand_computed_values():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    plain = -(math.log(1 / (1 + math.exp(-1))) + math.log(1 / (1 + math.exp(1)))) / 2
    assert training.bradley_terry_loss(chosen, rejected).item() == pytest.approx(plain)
    margin = torch.tensor([0.5, 0.5])
    with_margin = -(math.log(1 / (1 + math.exp(-0.5))) + math.log(1 / (1 + math.exp(1.5)))) / 2
    got = training.bradley_terry_loss(chosen, rejected, margin=margin).item()
    assert got == pytest.approx(with_margin)
    centred = training.bradley_terry_loss(chosen, rejected, center_rewards=0.1).item()
    assert centred == pytest.approx(plain + 0.1 * (9 + 1) / 2)
    lengths = torch.tensor([0.5, -0.25])
    penalised = training.bradley_terry_loss(
        chosen, rejected, length_penalty=2.0, length_difference=lengths
    ).item()
    assert penalised == pytest.approx(plain + 2.0 * (1 * 0.5 + (-1) * (-0.25)) / 2)


def tiny_decoder(folder):
    """A randomly initialised Llama-shaped model with the packaged model's BERT vocabulary."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = training.load_tokenizer(training.PACKAGED_MODEL)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_tiny_decoder_with_lora_learns_separable_pairs(tmp_path):
    base = tiny_decoder(tmp_path / "base")
    rows = separable_rows(160)
    config = training.TrainConfig(
        base_model=base, method="lora", lora_target_modules=["q_proj", "v_proj"],
        learning_rate=3e-3, batch_size=16, epochs=4, eval_every=10, max_length=64,
    )  # fmt: skip
    steps = []
    reporter = training.Reporter(progress=lambda step, total, m: steps.append((step, total, m)))
    final = training.train(config, rows[:128], rows[128:], tmp_path / "run", reporter)
    assert final["accuracy"] >= 0.9, final
    assert steps[-1][0] == steps[-1][1] == 32
    assert "eval" in steps[9][2] and steps[0][2]["tokens_per_second"] > 0
    assert set(final["accuracy_by_difficulty"]) <= {"easy", "medium", "hard"}
    assert (tmp_path / "run" / "adapter").is_dir()


def test_packaged_minilm_trains_saves_and_loads_with_plain_transformers(tmp_path):
    from transformers import AutoModelForSequenceClassification, pipeline

    rows = separable_rows(96)
    config = training.TrainConfig(
        method="lora", learning_rate=1e-3, batch_size=16, epochs=2, eval_every=100, max_length=64
    )
    final = training.train(config, rows[:64], rows[64:], tmp_path / "run")
    assert final["accuracy"] >= 0.8, final
    saved = tmp_path / "run" / "model"
    assert (saved / "model.safetensors").exists() and (saved / "README.md").exists()
    model = AutoModelForSequenceClassification.from_pretrained(saved)
    assert model.config.num_labels == 1
    scorer = pipeline("text-classification", model=str(saved), function_to_apply="none")
    good, bad = scorer([rows[70]["chosen"], rows[70]["rejected"]])
    assert isinstance(good["score"], float) and isinstance(bad["score"], float)


def test_long_prompts_are_shortened_from_the_start_never_dropped():
    tokenizer = training.load_tokenizer(training.PACKAGED_MODEL)
    prompt = "old words " * 200 + "the actual question?"
    encoded, cut = training.encode(tokenizer, prompt, "the answer", max_length=32)
    text = tokenizer.decode(encoded["input_ids"])
    assert cut and len(encoded["input_ids"]) <= 32
    assert "the actual question" in text and "the answer" in text


def test_cancel_stops_within_a_step_and_a_checkpoint_resumes(tmp_path):
    rows = separable_rows(64)
    config = training.TrainConfig(
        method="full", learning_rate=1e-5, batch_size=8, epochs=1, eval_every=100,
        checkpoint_every=2, max_length=48,
    )  # fmt: skip
    seen = []

    def stop_after_three() -> bool:
        return len(seen) >= 3

    reporter = training.Reporter(
        progress=lambda step, total, m: seen.append(step), should_stop=stop_after_three
    )
    with pytest.raises(training.Cancelled):
        training.train(config, rows[:48], rows[48:], tmp_path / "run", reporter)
    assert seen == [1, 2, 3]  # stopped before a fourth step
    assert (tmp_path / "run" / training.CHECKPOINT).exists()

    log, resumed = [], []
    reporter = training.Reporter(
        progress=lambda step, total, m: resumed.append(step), log=log.append
    )
    training.train(config, rows[:48], rows[48:], tmp_path / "run", reporter)
    assert any("resumed from the checkpoint at step 2" in line for line in log)
    assert resumed[0] == 3 and resumed[-1] == 6
    assert not (tmp_path / "run" / training.CHECKPOINT).exists()


def test_unknown_lora_targets_are_a_clear_error(tmp_path):
    config = training.TrainConfig(method="lora", lora_target_modules=["q_proj"])
    tokenizer = training.load_tokenizer(training.PACKAGED_MODEL)
    with pytest.raises(ValueError, match="no modules named q_proj"):
        training.load_model(config, tokenizer)
