"""Decoders read the reward at the last token: with real decoder tokenizers (built offline)
that token must be an end-of-sequence token after a complete response, there must be one
beginning-of-sequence token where the family uses one, and the chat template frames the
prompt. The packaged BERT vocabulary's [SEP] would hide all three."""

import pytest
import torch

from tests.factories import separable_rows
from tests.workers.decoder_models import decoder_model, decoder_tokenizer
from workers.ml import building, encoding, models, packing, training
from workers.ml.config import TrainConfig

PROMPT = "Question 1: name some fruit."


def test_llama3_style_one_bos_and_an_eos_after_the_response():
    tokenizer = decoder_tokenizer("llama3")
    (sequence,) = encoding.encode(
        tokenizer, [PROMPT], ["apple banana"], max_length=64, decoder=True
    )
    ids = sequence.ids
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert ids[-1] == tokenizer.eos_token_id
    text = tokenizer.decode(ids)
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\napple banana<|eot_id|>")
    assert sequence.response_tokens == len(tokenizer("apple banana", add_special_tokens=False)[
        "input_ids"]) and not sequence.truncated  # fmt: skip


def test_qwen_style_no_bos_and_an_eos_after_the_response():
    tokenizer = decoder_tokenizer("qwen")
    (sequence,) = encoding.encode(
        tokenizer, [PROMPT], ["apple banana"], max_length=64, decoder=True
    )
    text = tokenizer.decode(sequence.ids)
    assert text == (
        f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\napple banana<|im_end|>"
    )


@pytest.mark.parametrize("family", ["llama3", "qwen"])
def test_a_response_cut_to_fit_does_not_end_like_a_complete_one(family):
    tokenizer = decoder_tokenizer(family)
    long_answer = " ".join(["apple banana cherry"] * 40)
    (cut,) = encoding.encode(tokenizer, [PROMPT], [long_answer], max_length=32, decoder=True)
    (complete,) = encoding.encode(tokenizer, [PROMPT], ["apple"], max_length=64, decoder=True)
    assert cut.truncated and len(cut.ids) == 32 and cut.ids[-1] != tokenizer.eos_token_id
    assert complete.ids[-1] == tokenizer.eos_token_id and not complete.truncated
    if family == "llama3":
        assert cut.ids.count(tokenizer.bos_token_id) == 1


def test_a_long_prompt_loses_its_start_and_keeps_one_bos():
    tokenizer = decoder_tokenizer("llama3")
    prompt = "old words " * 100 + "the actual question?"
    (sequence,) = encoding.encode(tokenizer, [prompt], ["apple"], max_length=40, decoder=True)
    assert sequence.truncated and len(sequence.ids) == 40
    assert sequence.ids[0] == tokenizer.bos_token_id
    assert sequence.ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.decode(sequence.ids).endswith("apple<|eot_id|>")


@pytest.mark.parametrize("family", ["llama3", "qwen"])
def test_the_reward_is_read_at_the_end_of_sequence_token(tmp_path, family):
    base = decoder_model(tmp_path / "base", family)
    tokenizer = models.load_tokenizer(base)
    model, _ = building.model_to_train(TrainConfig(base_model=base, method="full"), tokenizer)
    model.eval()
    assert models.is_decoder(model) and models.reads_last_token(model)
    items = encoding.encode_rows(tokenizer, separable_rows(4), max_length=64, decoder=True)
    with torch.no_grad():
        padded = packing.rewards(model, packing.collate(items, tokenizer.pad_token_id, "cpu"))
        batch, ends = packing.collate_packed(items, 512, tokenizer.pad_token_id, "cpu")
        packed = packing.packed_rewards(model, batch, ends)
        first = items[0].chosen.ids
        hidden = model.model(input_ids=torch.tensor([first])).last_hidden_state
        at_eos = model.score(hidden[0, -1]).squeeze(-1)
    assert first[-1] == tokenizer.eos_token_id
    torch.testing.assert_close(padded[0], at_eos, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(packed, padded, rtol=1e-4, atol=1e-4)


def test_a_decoder_with_a_chat_template_learns(tmp_path):
    base = decoder_model(tmp_path / "base", "llama3")
    rows = separable_rows(160)
    config = TrainConfig(
        base_model=base, method="full", learning_rate=3e-3, batch_size=16, epochs=3,
        eval_every=100, max_length=64,
    )  # fmt: skip
    final = training.train(config, rows[:128], rows[128:], tmp_path / "run")
    assert final["accuracy"] >= 0.9, final
