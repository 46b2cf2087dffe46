"""Decoder tokenizers and models built offline, shaped like the real families: a Llama 3
style tokenizer (a beginning-of-sequence token that both the tokenizer and the chat template
add, `<|eot_id|>` as end of sequence) and a Qwen style one (no beginning-of-sequence token,
`<|im_end|>` as end of sequence, `<|endoftext|>` for padding). Byte-level BPE trained on a
few sentences, so any text encodes."""

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from tests.factories import WORDS

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
FAMILIES = {
    "llama3": {
        "special": ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                    "<|end_header_id|>", "<|finetune_right_pad_id|>"],
        "bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": "<|finetune_right_pad_id|>",
        "template": LLAMA3_TEMPLATE,
    },
    "qwen": {
        "special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>", "template": QWEN_TEMPLATE,
    },
}  # fmt: skip


def decoder_tokenizer(family: str) -> PreTrainedTokenizerFast:
    spec = FAMILIES[family]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [" ".join(WORDS), "Gladly! I hope that helps, thank you for asking. No. Question"]
    tokenizer.train_from_iterator(
        corpus * 20,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=spec["special"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )  # fmt: skip
    if spec["bos"]:  # Llama 3's tokenizer puts BOS before every text it encodes
        bos = spec["bos"]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1",
            special_tokens=[(bos, tokenizer.token_to_id(bos))],
        )  # fmt: skip
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=spec["bos"], eos_token=spec["eos"],
        pad_token=spec["pad"], chat_template=spec["template"],
    )  # fmt: skip


def decoder_model(folder, family: str) -> str:
    """A tiny randomly initialised Llama (for llama3) or Qwen2 (for qwen) reward model with
    the family's tokenizer, saved as a base model folder."""
    architecture = {"llama3": "llama", "qwen": "qwen2"}[family]
    return save_tiny_decoder(folder, decoder_tokenizer(family), architecture)


def save_tiny_decoder(folder, tokenizer, architecture: str) -> str:
    """A two-layer Llama- or Qwen2-shaped reward model with random weights and the given
    tokenizer, saved with it as a base model folder."""
    import transformers

    config_class, model_class = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForSequenceClassification),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForSequenceClassification),
    }[architecture]
    config = config_class(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
