"""Parsers of pair, label, candidate and signal records (HH-RLHF dialogues included): each record
becomes a valid row or the error that names what is wrong with it."""

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.conf import settings

from annotation.agreement.maths import CHOICE_CODES
from annotation.pairs.readers import RowError, detect_format, read_records
from config.inputs import value_problem

HH_ASSISTANT = "\n\nAssistant:"
HH_TURN_ROLES = {"Human": "user", "Assistant": "assistant"}
MAX_ID_CHARS = 255
MAX_NAME_CHARS = 100


@dataclass
class PairRow:
    line: int
    prompt: str | list[dict[str, str]]
    response_a: str
    response_b: str
    external_id: str
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # For rows that arrive labelled: which stored response was preferred.
    preferred: str | None = None


@dataclass
class LabelRow:
    line: int
    pair: str
    annotator: str
    choice: str
    strength: int | None = None
    rationale: str = ""
    shown_left: str = ""  # the stored response shown on the left: a, b or "" (not known)
    duration_ms: int | None = None


def content_id(prompt: Any, first: str, second: str) -> str:
    """A stable id for a row without one; the same pair in either order gets the same id."""
    body = json.dumps([prompt, sorted([first, second])], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]


def split_hh_dialogues(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two HH-RLHF dialogues into (shared prompt, chosen response, rejected response).

    The prompt runs up to the last `\\n\\nAssistant:` both dialogues share; the responses are
    what follows. Their last turns may differ in shape (one may go on with more turns), and a
    response may be empty.
    """
    shared = os.path.commonprefix([chosen, rejected])
    cut = chosen.rfind(HH_ASSISTANT, 0, len(shared))
    if cut < 0:
        raise ValueError("the two dialogues share no '\\n\\nAssistant:' turn")
    end = cut + len(HH_ASSISTANT)
    return chosen[:end], chosen[end:].strip(), rejected[end:].strip()


def hh_prompt_messages(prompt: str) -> list[dict[str, str]] | str:
    """Turn '\\n\\nHuman: ..\\n\\nAssistant: ..' text into chat messages, when it has that shape."""

    parts = re.split(r"\n\n(Human|Assistant):", prompt)
    if parts[0].strip() or len(parts) < 3:
        return prompt
    messages = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": HH_TURN_ROLES[speaker], "content": content.strip()})
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()  # the open assistant turn the responses complete
    return messages or prompt


def check_prompt(prompt: Any) -> str | None:
    if isinstance(prompt, str):
        return None
    if isinstance(prompt, list) and prompt:
        for index, message in enumerate(prompt):
            if not (
                isinstance(message, dict)
                and isinstance(message.get("role"), str)
                and message["role"]
                and isinstance(message.get("content"), str)
            ):
                return f"prompt message {index} needs a 'role' and a text 'content'"
        return None
    return "'prompt' must be text or a non-empty list of {role, content} messages"


def prompt_chars(prompt: str | list[dict[str, str]]) -> int:
    if isinstance(prompt, str):
        return len(prompt)
    return sum(len(m["content"]) for m in prompt)


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in value)
    )


def _conversational_pair(
    prompt: Any, chosen: list[dict], rejected: list[dict]
) -> tuple[Any, str, str] | str:
    """(prompt, chosen text, rejected text) from TRL's conversational form, where the
    responses are lists of messages: after an explicit prompt, or holding the whole
    conversation, the prompt being the messages both share. A message (str) if neither."""
    if prompt is None:
        shared = 0
        while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
            shared += 1
        if not shared:
            return "conversations in 'chosen' and 'rejected' share no prompt messages"
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    roles = {m.get("role") for m in chosen + rejected}
    if roles - {"assistant"}:
        return "'chosen' and 'rejected' messages after the prompt must be the assistant's"
    return prompt, "".join(m["content"] for m in chosen), "".join(m["content"] for m in rejected)


PAIR_FIELDS = {"id", "pair_id", "prompt", "response_a", "response_b", "chosen", "rejected"}
PAIR_FIELDS |= {"source", "metadata"}


def _hh_texts(line: int, record: dict[str, Any]) -> tuple[Any, str, str] | RowError:
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        return RowError(line, "HH rows need text fields 'chosen' and 'rejected'")
    if record.get("prompt") is not None:
        return RowError(line, "HH rows hold whole dialogues; this row also has a 'prompt'")
    if chosen == rejected:
        return RowError(line, "'chosen' and 'rejected' are identical")
    try:
        prompt_text, first, second = split_hh_dialogues(chosen, rejected)
    except ValueError as exc:
        return RowError(line, str(exc))
    return hh_prompt_messages(prompt_text), first, second


def _pair_texts(
    line: int, record: dict[str, Any], hh: bool
) -> tuple[Any, str, str, bool] | RowError:
    """(prompt, first response, second response, whether the first is the preferred one)
    from any of the accepted shapes: TRL's conversational form, HH dialogues, chosen and
    rejected texts, or an unlabelled pair (response_a, response_b)."""
    prompt = record.get("prompt")
    conversational = _is_messages(record.get("chosen")) and _is_messages(record.get("rejected"))
    if conversational and not hh:
        pair = _conversational_pair(prompt, record["chosen"], record["rejected"])
        return RowError(line, pair) if isinstance(pair, str) else (*pair, True)
    if hh or (prompt is None and "chosen" in record and "rejected" in record):
        texts = _hh_texts(line, record)
        return texts if isinstance(texts, RowError) else (*texts, True)
    if "chosen" in record or "rejected" in record:
        first, second = record.get("chosen"), record.get("rejected")
        if not isinstance(first, str) or not isinstance(second, str):
            return RowError(
                line,
                "labelled rows need 'chosen' and 'rejected' as texts or as lists of "
                "{role, content} messages",
            )
        return prompt, first, second, True
    first, second = record.get("response_a"), record.get("response_b")
    missing = [
        name
        for name, value in (("prompt", prompt), ("response_a", first), ("response_b", second))
        if value is None
    ]
    if missing:
        return RowError(line, f"missing field {', '.join(repr(m) for m in missing)}")
    if not isinstance(first, str) or not isinstance(second, str):
        return RowError(line, "'response_a' and 'response_b' must be text")
    return prompt, first, second, False


def _texts_problem(prompt: Any, first: str, second: str) -> str | None:
    if prompt is None:
        return "missing field 'prompt'"
    problem = check_prompt(prompt)
    if problem:
        return problem
    if first == second:
        return "the two responses are identical"
    limit = settings.IMPORT_MAX_FIELD_CHARS
    for name, size in (
        ("prompt", prompt_chars(prompt)),
        ("response", max(len(first), len(second))),
    ):
        if size > limit:
            return f"{name} has {size:,} characters; the limit is {limit:,}"
    return None


def _external_id(record: dict[str, Any], prompt: Any, first: str, second: str) -> str:
    """The row's id, or the content's checksum when it has none. Raises ValueError."""
    # A curated version names each pair's id `pair_id`: it imports back under that id.
    external_id = record.get("id")
    if external_id is None or external_id == "":
        external_id = record.get("pair_id")
    if external_id is None or external_id == "":
        return content_id(prompt, first, second)
    if not isinstance(external_id, str | int) or isinstance(external_id, bool):
        raise ValueError("'id' must be text or a number")
    if len(str(external_id)) > MAX_ID_CHARS:
        raise ValueError(f"'id' is longer than {MAX_ID_CHARS} characters")
    return str(external_id)


def _metadata(record: dict[str, Any]) -> dict:
    """The row's metadata with its extra columns. Raises ValueError."""
    metadata = record.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except (json.JSONDecodeError, RecursionError):
            raise ValueError("'metadata' is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise ValueError("'metadata' must be an object")
    extra = {k: v for k, v in record.items() if k not in PAIR_FIELDS and v is not None}
    metadata = {**extra, **metadata}
    problem = value_problem(metadata)
    if problem:
        raise ValueError(f"'metadata' {problem}")
    limit = settings.IMPORT_MAX_METADATA_CHARS
    if len(json.dumps(metadata, ensure_ascii=False)) > limit:
        raise ValueError(f"'metadata' (with any extra columns) is over {limit:,} characters")
    return metadata


def parse_pair_record(line: int, record: dict[str, Any], *, hh: bool = False) -> PairRow | RowError:
    texts = _pair_texts(line, record, hh)
    if isinstance(texts, RowError):
        return texts
    prompt, first, second, labelled = texts
    problem = _texts_problem(prompt, first, second)
    if problem:
        return RowError(line, problem)
    try:
        external_id = _external_id(record, prompt, first, second)
        source = record.get("source") or ""
        if not isinstance(source, str) or len(source) > 200:
            raise ValueError("'source' must be text of at most 200 characters")
        metadata = _metadata(record)
    except ValueError as exc:
        return RowError(line, str(exc))
    row = PairRow(line, prompt, first, second, external_id, source=source, metadata=metadata)
    if labelled:
        # Store labelled pairs in an order that carries no hint of which one was preferred,
        # yet is the same on every import of the same row.
        chosen_goes_first = int(hashlib.sha256(external_id.encode()).hexdigest()[0], 16) % 2 == 0
        if chosen_goes_first:
            row.preferred = "a"
        else:
            row.response_a, row.response_b = second, first
            row.preferred = "b"
    return row


def read_pair_rows(stream: BinaryIO, filename: str, fmt: str) -> Iterator[PairRow | RowError]:
    hh = detect_format(filename, fmt) == "hh"
    for line, record in read_records(stream, filename, fmt):
        yield record if isinstance(record, RowError) else parse_pair_record(line, record, hh=hh)


def parse_label_record(line: int, record: dict[str, Any]) -> LabelRow | RowError:
    pair, annotator, choice = record.get("pair"), record.get("annotator"), record.get("choice")
    missing = [
        n
        for n, v in (("pair", pair), ("annotator", annotator), ("choice", choice))
        if v in (None, "")
    ]
    if missing:
        return RowError(line, f"missing field {', '.join(repr(m) for m in missing)}")
    if not isinstance(annotator, str) or len(annotator) > MAX_NAME_CHARS:
        return RowError(line, f"'annotator' must be text of at most {MAX_NAME_CHARS} characters")
    if choice not in tuple(CHOICE_CODES):  # a tuple: the value may be unhashable
        return RowError(line, f"'choice' must be a, b or tie, not {choice!r}")
    rationale = record.get("rationale") or ""
    if not isinstance(rationale, str) or len(rationale) > settings.IMPORT_MAX_FIELD_CHARS:
        return RowError(line, "'rationale' must be text within the field size limit")
    shown_left = record.get("shown_left") or ""  # the stored response shown on the left
    if shown_left not in ("", "a", "b"):
        return RowError(line, f"'shown_left' must be a, b or empty, not {shown_left!r}")
    try:
        strength = _whole_number(record, "strength", 3, "0, 1, 2 or 3")
        duration = _whole_number(
            record, "duration_ms", MAX_DURATION_MS, "a whole number of milliseconds, 0 or more"
        )
    except ValueError as exc:
        return RowError(line, str(exc))
    return LabelRow(line, str(pair), annotator, choice, strength, rationale, shown_left, duration)


MAX_DURATION_MS = 2**31 - 1  # what the label's column holds


def _whole_number(record: dict[str, Any], name: str, most: int, meaning: str) -> int | None:
    """The field as a whole number from 0 to `most`, or None when empty (a CSV's empty cell,
    JSON's null). CSV text and a dataframe's 2.0 count as the number. Raises ValueError."""
    value = number = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    whole_float = isinstance(value, float) and value.is_integer()
    if whole_float or (
        isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()
    ):
        number = int(value)
    if type(number) is not int or not 0 <= number <= most:
        raise ValueError(f"'{name}' must be {meaning}, not {value!r}")
    return number


def read_label_rows(stream: BinaryIO, filename: str, fmt: str) -> Iterator[LabelRow | RowError]:
    for line, record in read_records(stream, filename, fmt):
        yield record if isinstance(record, RowError) else parse_label_record(line, record)


def parse_candidate_record(line: int, record: dict[str, Any]) -> list[dict] | RowError:
    """A prompt with its `responses` (or `candidates`) list, or one `{prompt, response}` row,
    as {prompt, response} rows."""
    prompt = record.get("prompt")
    if prompt is None:
        return RowError(line, "missing field 'prompt'")
    problem = check_prompt(prompt)
    if problem:
        return RowError(line, problem)
    if "response" in record:
        responses = [record["response"]]
    else:
        responses = record.get("responses", record.get("candidates"))
        if isinstance(responses, str):  # a CSV cell holding a JSON list
            try:
                responses = json.loads(responses)
            except json.JSONDecodeError:
                return RowError(line, "'responses' is not a JSON list")
        if not isinstance(responses, list) or not responses:
            return RowError(line, "give 'response' (text) or 'responses' (a list of texts)")
    limit = settings.IMPORT_MAX_FIELD_CHARS
    if prompt_chars(prompt) > limit:
        return RowError(line, f"prompt has more than {limit:,} characters")
    for response in responses:
        if not isinstance(response, str) or not response.strip():
            return RowError(line, "each response must be non-empty text")
        if len(response) > limit:
            return RowError(line, f"a response has more than {limit:,} characters")
    return [{"prompt": prompt, "response": response} for response in responses]


@dataclass
class SignalRow:
    line: int
    prompt: Any
    response: str
    score: float


def parse_signal_record(line: int, record: dict[str, Any]) -> SignalRow | RowError:
    prompt, response, score = record.get("prompt"), record.get("response"), record.get("score")
    if prompt is None:
        return RowError(line, "missing field 'prompt'")
    problem = check_prompt(prompt)
    if problem:
        return RowError(line, problem)
    if not isinstance(response, str) or not response.strip():
        return RowError(line, "'response' must be non-empty text")
    limit = settings.IMPORT_MAX_FIELD_CHARS
    if prompt_chars(prompt) > limit or len(response) > limit:
        return RowError(line, f"a prompt or response has more than {limit:,} characters")
    if isinstance(score, str):
        try:
            score = float(score)
        except ValueError:
            return RowError(line, f"'score' must be a number, not {score!r}")
    if isinstance(score, bool):
        score = float(score)  # task completion as true/false
    if not isinstance(score, int | float) or score != score or abs(score) == float("inf"):
        return RowError(line, "'score' must be a number (an upvote count, a rating, 0 or 1)")
    return SignalRow(line, prompt, response, float(score))


def read_signal_rows(stream: BinaryIO, filename: str, fmt: str) -> Iterator[SignalRow | RowError]:
    for line, record in read_records(stream, filename, fmt):
        yield record if isinstance(record, RowError) else parse_signal_record(line, record)
