"""The trainer on the CPU: loss values, learning on separable pairs, saving, resuming, cancel."""

import math

import numpy as np
import pytest
import torch

from tests.factories import separable_rows
from tests.workers.decoder_models import decoder_model, save_tiny_decoder
from workers.ml import batching, building, checkpoints, encoding, losses, models, packing, training
from workers.ml.config import PACKAGED_MODEL, TrainConfig


def test_bradley_terry_loss_matches_hand_computed_values():
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    plain = -(math.log(1 / (1 + math.exp(-1))) + math.log(1 / (1 + math.exp(1)))) / 2
    assert losses.bradley_terry_loss(chosen, rejected).item() == pytest.approx(plain)
    margin = torch.tensor([0.5, 0.5])
    with_margin = -(math.log(1 / (1 + math.exp(-0.5))) + math.log(1 / (1 + math.exp(1.5)))) / 2
    got = losses.bradley_terry_loss(chosen, rejected, margin=margin).item()
    assert got == pytest.approx(with_margin)
    centred = losses.bradley_terry_loss(chosen, rejected, center_rewards=0.1).item()
    assert centred == pytest.approx(plain + 0.1 * (9 + 1) / 2)
    lengths = torch.tensor([10.0, 30.0]), torch.tensor([20.0, 5.0])
    penalised = losses.bradley_terry_loss(
        chosen, rejected, length_penalty=2.0, chosen_tokens=lengths[0], rejected_tokens=lengths[1]
    ).item()
    rewards, tokens = np.array([2.0, 0.0, 1.0, 1.0]), np.array([10.0, 30.0, 20.0, 5.0])
    covariance = np.mean((rewards - rewards.mean()) * (tokens - tokens.mean()) / tokens.std())
    assert penalised == pytest.approx(plain + 2.0 * covariance**2, rel=1e-5)


def tiny_decoder(folder, family: str = "llama"):
    """A randomly initialised Llama- or Qwen2-shaped model with the packaged BERT vocabulary."""
    tokenizer = models.load_tokenizer(PACKAGED_MODEL)
    return save_tiny_decoder(folder, tokenizer, family)


def test_tiny_decoder_with_lora_learns_separable_pairs(tmp_path):
    base = tiny_decoder(tmp_path / "base")
    rows = separable_rows(160)
    config = TrainConfig(
        augment_edits=False,
        base_model=base, method="lora", lora_target_modules=["q_proj", "v_proj"],
        learning_rate=3e-3, batch_size=16, epochs=4, eval_every=10, max_length=64,
    )  # fmt: skip
    steps = []
    reporter = training.Reporter(progress=lambda step, total, m: steps.append((step, total, m)))
    final = training.train(config, rows[:128], rows[128:], tmp_path / "run", reporter)
    assert final["accuracy"] >= 0.9, final
    assert steps[-1][0] == steps[-1][1] == 32
    assert steps[0][0] == 0 and steps[0][2]["eval"] == final["untrained"]
    assert "eval" in steps[10][2] and steps[1][2]["tokens_per_second"] > 0
    assert set(final["by_difficulty"]) <= {"easy", "medium", "hard"}
    assert {"ece", "length", "mean_reward_gap", "reward_std"} <= set(final)
    assert (tmp_path / "run" / "adapter").is_dir()


def test_a_saved_model_scores_with_plain_transformers_as_the_product_does(trained_model):
    """The saved folder read without the product, as a text pair (prompt, response) by
    AutoModelForSequenceClassification or by pipeline("text-classification"), gives the
    rewards the product's scorer gives; and ranks chosen above rejected on the pairs it
    trained on."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from workers.ml import scoring

    saved, final = trained_model
    assert final["accuracy"] >= 0.8, final
    assert (saved / "model.safetensors").exists() and (saved / "README.md").exists()
    rows = separable_rows(96)[:64]  # the fixture's training pairs
    prompts = [r["prompt"] for r in rows] * 2
    responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    tokenizer = AutoTokenizer.from_pretrained(saved)
    model = AutoModelForSequenceClassification.from_pretrained(saved).eval()
    assert model.config.num_labels == 1
    with torch.no_grad():
        inputs = tokenizer(prompts, responses, padding=True, return_tensors="pt")
        plain = model(**inputs).logits[:, 0].numpy()
    product, _ = scoring.Scorer(str(saved), training_precision=True).score(prompts, responses)
    assert plain == pytest.approx(product, abs=1e-4)
    assert (plain[:64] > plain[64:]).mean() >= 0.95

    classify = pipeline("text-classification", model=str(saved), function_to_apply="none")
    pairs = list(zip(prompts, responses, strict=True))[62:66]  # two chosen, two rejected
    texts = [{"text": prompt, "text_pair": response} for prompt, response in pairs]
    assert [out["score"] for out in classify(texts)] == pytest.approx(product[62:66], abs=1e-4)


def test_long_prompts_are_shortened_from_the_start_never_dropped():
    tokenizer = models.load_tokenizer(PACKAGED_MODEL)
    prompt = "old words " * 200 + "the actual question?"
    long, short = encoding.encode(
        tokenizer, [prompt, "Hi?"], ["the answer", "the answer"], max_length=32
    )
    text = tokenizer.decode(long.ids)
    assert long.truncated and len(long.ids) <= 32 and long.response_tokens == 2
    assert "the actual question" in text and "the answer" in text
    assert not short.truncated and tokenizer.decode(short.ids) == "[CLS] hi? [SEP] the answer [SEP]"


def test_cancel_stops_within_a_step_and_a_checkpoint_resumes(tmp_path):
    rows = separable_rows(64)
    config = TrainConfig(
        augment_edits=False,
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
    assert seen == [0, 1, 2]  # the untrained model's figures, then two steps, then the stop
    assert (tmp_path / "run" / checkpoints.CHECKPOINT).exists()

    log, resumed = [], []
    reporter = training.Reporter(
        progress=lambda step, total, m: resumed.append(step), log=log.append
    )
    training.train(config, rows[:48], rows[48:], tmp_path / "run", reporter)
    assert any("resumed from the checkpoint at step 2" in line for line in log)
    assert resumed[0] == 3 and resumed[-1] == 6  # step 0 is not measured again
    assert not (tmp_path / "run" / checkpoints.CHECKPOINT).exists()


def test_unknown_lora_targets_are_a_clear_error(tmp_path):
    config = TrainConfig(augment_edits=False, method="lora", lora_target_modules=["q_proj"])
    tokenizer = models.load_tokenizer(PACKAGED_MODEL)
    with pytest.raises(ValueError, match="no modules named q_proj"):
        building.model_to_train(config, tokenizer)


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_packed_scores_match_padded_scores(tmp_path, family):
    base = tiny_decoder(tmp_path / "base", family)
    tokenizer = models.load_tokenizer(base)
    config = TrainConfig(augment_edits=False, base_model=base, method="lora")
    model, _ = building.model_to_train(config, tokenizer)
    model.eval()
    items = encoding.encode_rows(tokenizer, separable_rows(6), max_length=64)
    assert packing.supports_packing(model)
    with torch.no_grad():
        padded = packing.rewards(model, packing.collate(items, tokenizer.pad_token_id, "cpu"))
        batch, ends = packing.collate_packed(items, 1024, tokenizer.pad_token_id, "cpu")
        packed = packing.packed_rewards(model, batch, ends)
        # With the sequences allowed to see each other, the scores would differ.
        leaked = (
            models.unwrapped(model)
            .score(
                models.unwrapped(model)
                .model(input_ids=batch["input_ids"])
                .last_hidden_state[0, ends]
            )
            .squeeze(-1)
        )
    assert batch["input_ids"].shape == (1, 1024)
    torch.testing.assert_close(packed, padded, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(leaked[1:], padded[1:], atol=1e-3)


def test_encoders_are_not_packed(tmp_path):
    tokenizer = models.load_tokenizer(PACKAGED_MODEL)
    model, _ = building.model_to_train(TrainConfig(augment_edits=False, method="full"), tokenizer)
    assert not packing.supports_packing(model)


def test_packed_batches_hold_a_token_budget_and_every_pair_once():
    items = encoding.encode_rows(
        models.load_tokenizer(PACKAGED_MODEL), separable_rows(50), max_length=64
    )
    budget = batching.default_token_budget(items, batch_size=8)
    batches = batching.token_budget_batches(items, budget, seed=1)
    assert sorted(i for batch in batches for i in batch) == list(range(50))
    for batch in batches:
        assert sum(items[i].tokens for i in batch) <= budget
    assert 4 <= 50 / len(batches) <= 10  # about 8 pairs a batch on average


def test_packed_training_learns(tmp_path):
    base = tiny_decoder(tmp_path / "base", "qwen2")
    rows = separable_rows(160)
    config = TrainConfig(
        augment_edits=False,
        base_model=base, method="lora", packing=True, learning_rate=3e-3, batch_size=16,
        epochs=4, eval_every=100, max_length=64,
    )  # fmt: skip
    lines = []
    final = training.train(
        config, rows[:128], rows[128:], tmp_path / "run", training.Reporter(log=lines.append)
    )
    assert any("packed batches" in line for line in lines), lines
    assert final["accuracy"] >= 0.9, final


def _packed_sample(tmp_path):
    base = tiny_decoder(tmp_path / "base", "qwen2")
    tokenizer = models.load_tokenizer(base)
    model, _ = building.model_to_train(
        TrainConfig(augment_edits=False, base_model=base, method="lora"), tokenizer
    )
    items = encoding.encode_rows(tokenizer, separable_rows(6), max_length=64)
    return model, packing.collate_packed(items, 512, tokenizer.pad_token_id, "cpu")


def test_compiled_layers_score_and_train_as_eager_ones(tmp_path):
    model, (batch, ends) = _packed_sample(tmp_path)
    with torch.no_grad():
        eager = packing.packed_rewards(model.eval(), batch, ends)
    model.train()
    lines = []
    trial = lambda: packing.packed_rewards(model, batch, ends).sum().backward()  # noqa: E731
    assert building.compile_blocks(model, trial, lines.append), lines
    blocks = building.repeated_blocks(model)
    assert len(blocks) == 2 and all(b._compiled_call_impl is not None for b in blocks)
    assert all(p.grad is None for p in model.parameters())  # the trial leaves no gradients
    with torch.no_grad():
        compiled = packing.packed_rewards(model.eval(), batch, ends)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_a_failing_compilation_falls_back_to_eager_layers(tmp_path):
    model, (batch, ends) = _packed_sample(tmp_path)

    def trial():
        packing.packed_rewards(model, batch, ends).sum().backward()
        raise RuntimeError("the compiler gave up")

    lines = []
    assert not building.compile_blocks(model, trial, lines.append)
    assert "compiling the layers failed" in lines[0] and "gave up" in lines[0]
    assert all(b._compiled_call_impl is None for b in building.repeated_blocks(model))
    assert all(p.grad is None for p in model.parameters())


def test_max_pairs_draws_a_seeded_sample_not_the_first_rows():
    rows = [{"id": i} for i in range(100)]
    sample = training.sample_rows(rows, 10, seed=0)
    assert len(sample) == 10 and sample != rows[:10]
    assert sample == training.sample_rows(rows, 10, seed=0)  # the same run, the same pairs
    assert sample != training.sample_rows(rows, 10, seed=1)
    assert [r["id"] for r in sample] == sorted(r["id"] for r in sample)
    assert training.sample_rows(rows, None, seed=0) is rows


def test_a_short_last_accumulation_window_weighs_as_much_as_a_full_one():
    assert batching.accumulation_windows(5, 2) == [2, 2, 1]
    assert batching.accumulation_windows(4, 4) == [4]
    assert batching.accumulation_windows(3, 1) == [1, 1, 1]


def test_defaults_are_chosen_for_the_base_model(tmp_path, monkeypatch):
    tokenizer = models.load_tokenizer(PACKAGED_MODEL)
    minilm = models.load_base_model(TrainConfig(augment_edits=False), tokenizer)
    chosen = models.choose_defaults(TrainConfig(augment_edits=False), minilm)
    assert (chosen.method, chosen.learning_rate) == ("full", 5e-5)  # a small encoder
    given = TrainConfig(augment_edits=False, method="lora", learning_rate=1e-3)
    assert models.choose_defaults(given, minilm) == given  # what is given is kept

    base = decoder_model(tmp_path / "base", "qwen")
    config = TrainConfig(augment_edits=False, base_model=base)
    decoder = models.load_base_model(config, models.load_tokenizer(base))
    chosen = models.choose_defaults(config, decoder)
    assert (chosen.method, chosen.learning_rate) == ("full", 1e-5)  # a small decoder
    monkeypatch.setattr(models, "LORA_FROM_PARAMETERS", 1000)  # as if it were large
    chosen = models.choose_defaults(config, decoder)
    assert (chosen.method, chosen.learning_rate) == ("lora", 2e-4)
