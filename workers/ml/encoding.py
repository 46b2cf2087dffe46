"""Prompts and responses as token ids, exactly as the model reads them in training and in
scoring: the chat template where there is one, the prompt's start cut first, and for decoders
one beginning-of-sequence token and an end-of-sequence token after each complete response.
The recipes below spell the same layout out in plain transformers for a model's card; a
reward model trained elsewhere is read in its own chat format (encode_conversations)."""

from dataclasses import dataclass
from string import Template

from workers.ml.metrics import share_chosen_of


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


def encode_conversations(
    tokenizer, prompts: list, responses: list[str], max_length: int
) -> list[Sequence]:
    """Token ids of each (user prompt, assistant response) conversation through the
    tokenizer's chat template, as tokenizer.apply_chat_template gives them: the format a
    reward model trained elsewhere was trained on, its reward read after the template's end
    of turn. The prompt's part loses its start first (a beginning-of-sequence token the
    template renders stays); only a response longer than everything keeps just its
    beginning."""
    if not prompts:
        return []
    bos = tokenizer.bos_token_id
    conversations = [
        _messages(prompt) + [{"role": "assistant", "content": response}]
        for prompt, response in zip(prompts, responses, strict=True)
    ]
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    ids_of = tokenizer(texts, add_special_tokens=False)["input_ids"]
    prompt_ids = tokenizer([prompt_text(tokenizer, p) for p in prompts], add_special_tokens=False)
    response_ids = tokenizer(responses, add_special_tokens=False)["input_ids"]
    result = []
    for ids, before, response in zip(ids_of, prompt_ids["input_ids"], response_ids, strict=True):
        head = ids[:1] if bos is not None and ids[:1] == [bos] else []
        split = max(len(head), min(len(before), len(ids)))  # where the response's turn starts
        prompt, rest = ids[len(head) : split], ids[split:]
        room = max_length - len(head) - 1  # at least one prompt token stays
        cut_response = len(rest) > room
        rest = rest[:room]
        keep = max_length - len(head) - len(rest)
        kept_prompt = prompt[-keep:] if keep < len(prompt) else prompt
        result.append(
            Sequence(
                head + kept_prompt + rest, None, min(len(response), len(rest)),
                cut_response or len(kept_prompt) < len(prompt),
            )
        )  # fmt: skip
    return result


# How a model trained here reads a prompt and response, for its card: plain transformers,
# step for step what encode() does for one row. tests/workers/test_training.py runs them
# from a saved model's card against the scorer.
_RECIPE_HEAD = """import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

path = "."  # this model's folder
tokenizer = AutoTokenizer.from_pretrained(path, truncation_side="left")
model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
MAX_LENGTH = $max_length  # tokens, as in training


def reward(prompt: str | list[dict], response: str) -> float:
    # The prompt as text, or as a conversation: a list of {role, content} messages.
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if tokenizer.chat_template:
        prompt = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
    elif not isinstance(prompt, str):
        prompt = "\\n\\n".join(f"{m['role']}: {m['content']}" for m in messages)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
"""
ENCODER_RECIPE = Template(
    _RECIPE_HEAD
    + """    # Prompt and response as a text pair, the prompt's start cut to fit; a response
    # longer than everything keeps just its beginning.
    room = MAX_LENGTH - tokenizer.num_special_tokens_to_add(pair=True) - 1
    if len(response_ids) > room:
        response = tokenizer.decode(response_ids[:room])
    inputs = tokenizer(
        prompt, response, truncation="only_first", max_length=MAX_LENGTH, return_tensors="pt"
    )
    with torch.no_grad():
        return model(**inputs).logits[0, 0].item()
"""
)
DECODER_RECIPE = Template(
    _RECIPE_HEAD
    + """    # [BOS] prompt response [EOS]: one beginning-of-sequence token where the tokenizer
    # or the chat template uses one, the prompt's start cut to fit, and the reward read at
    # the end-of-sequence token after the response (none after a response cut to fit).
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    starts = tokenizer("a")["input_ids"][:1] + prompt_ids[:1]
    head = [bos] if bos is not None and bos in starts else []
    if head and prompt_ids[:1] == head:
        prompt_ids = prompt_ids[1:]
    ending = [eos] if eos is not None and response_ids[-1:] != [eos] else []
    room = MAX_LENGTH - len(head) - 1
    if len(response_ids) + len(ending) > room:
        response_ids, ending = response_ids[:room], []
    keep = MAX_LENGTH - len(head) - len(response_ids) - len(ending)
    ids = head + prompt_ids[-keep:] + response_ids + ending
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, 0].item()
"""
)


def recipe(max_length: int, *, decoder: bool) -> str:
    """The Python that scores one prompt and response as encode() lays them out."""
    return (DECODER_RECIPE if decoder else ENCODER_RECIPE).substitute(max_length=max_length)


@dataclass
class Encoded:
    chosen: Sequence
    rejected: Sequence
    margin: float
    difficulty: str
    share_chosen: float | None = None  # of people who chose it, where two or more voted

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
        Encoded(
            c, r, float(row.get("margin") or 0.0), row.get("difficulty") or "", share_chosen_of(row)
        )
        for c, r, row in zip(chosen, rejected, rows, strict=True)
    ]
