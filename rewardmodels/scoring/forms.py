"""The form that launches a filter from a model's page, and the one that tries a model on a
prompt and its responses."""

import json
import re

from django import forms

from annotation.pairs.formats import check_prompt, prompt_chars
from rewardmodels.models import FilterRun
from rewardmodels.pages import FORMAT_CHOICES, ServiceErrors
from rewardmodels.scoring.rankings import letter
from rewardmodels.scoring.services import MAX_SCORE_CHARS, MAX_SCORE_ITEMS


class FilterForm(ServiceErrors, forms.ModelForm):
    """Score a candidates file and keep the best per prompt; limits come from FilterRun."""

    file_field = "candidates"

    candidates = forms.FileField(
        label="Candidates file",
        help_text="JSONL, CSV or Parquet: a prompt with its 'responses' list, or one "
        "{prompt, response} per row.",
    )
    # HH-RLHF files hold pairs, not candidates to filter.
    format = forms.ChoiceField(
        choices=[(name, label) for name, label in FORMAT_CHOICES if name != "hh"], initial="auto"
    )

    field_order = ["candidates", "format", "keep_top", "threshold", "normalize"]

    class Meta:
        model = FilterRun
        fields = ["keep_top", "threshold", "normalize"]
        labels = {"keep_top": "Keep top share", "normalize": "Normalisation"}
        help_texts = {
            "normalize": "Removing the length trend ranks by reward minus the model's fitted "
            "reward per token times each response's tokens, so a padded long answer does not "
            "win on length alone (raw reward for a model that did not record its trend).",
        }

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")
        kwargs.setdefault("initial", {"keep_top": 0.25})
        super().__init__(*args, **kwargs)


class ResponseBoxes(forms.Widget):
    """One textarea per response, all under one name; the page draws them itself."""

    def value_from_datadict(self, data, files, name):
        return data.getlist(name) if hasattr(data, "getlist") else list(data.get(name) or [])


def _box_problem(text: str) -> str | None:
    if not text.strip():
        return "empty"
    if len(text) > MAX_SCORE_CHARS:
        return f"has {len(text):,} characters; at most {MAX_SCORE_CHARS:,}"
    return None


def _unix_lines(text: str) -> str:
    """The text as typed: browsers send a textarea's line ends as CRLF."""
    return text.replace("\r\n", "\n")


CONVERSATION = re.compile(r"\s*\[\s*\{")  # what a JSON list of turns starts with


def _conversation(text: str) -> list[dict]:
    try:
        turns = json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(
            f"The prompt reads as a conversation but is not valid JSON ({exc}); write it as "
            '[{"role": "user", "content": "..."}, ...], or as plain text.'
        ) from None
    if problem := check_prompt(turns):
        raise forms.ValidationError(f"The conversation: {problem}.")
    return turns


class TryForm(forms.Form):
    """A prompt and the responses to rank for it, with the best-of-N API's limits (those of
    its serializer): each text at most MAX_SCORE_CHARS, at most MAX_SCORE_ITEMS responses."""

    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        strip=False,
        error_messages={"required": "Write the prompt the responses answer."},
        help_text='Text, or a conversation as a JSON list of turns: [{"role": "user", '
        '"content": "..."}, {"role": "assistant", ...}, ...], the responses answering its end.',
    )
    response = forms.Field(widget=ResponseBoxes, required=False)

    SHOWN_EMPTY = 2  # boxes on a fresh page, and the fewest shown

    def clean_prompt(self) -> str | list[dict]:
        """The prompt as typed, or the conversation a JSON list of turns makes (as the API
        takes it)."""
        prompt = _unix_lines(self.cleaned_data["prompt"])
        if not prompt.strip():
            raise forms.ValidationError(self.fields["prompt"].error_messages["required"])
        if CONVERSATION.match(prompt):
            prompt = _conversation(prompt)
        if prompt_chars(prompt) > MAX_SCORE_CHARS:
            raise forms.ValidationError(
                f"The prompt has {prompt_chars(prompt):,} characters; at most {MAX_SCORE_CHARS:,}."
            )
        return prompt

    def clean_response(self) -> list[str]:
        responses = [_unix_lines(text) for text in self.cleaned_data["response"] or []]
        errors = []
        if len(responses) < 2:
            errors.append("Give at least two responses to rank.")
        if len(responses) > MAX_SCORE_ITEMS:
            errors.append(
                f"At most {MAX_SCORE_ITEMS} responses at once (the API's limit); "
                f"there are {len(responses)}."
            )
        empty = []
        for index, text in enumerate(responses):
            problem = _box_problem(text)
            if problem == "empty":
                empty.append(letter(index))
            elif problem:
                errors.append(f"Response {letter(index)} {problem}.")
        if empty:
            many = len(empty) > 1
            names = f"{', '.join(empty[:-1])} and {empty[-1]}" if many else empty[0]
            them = "them" if many else "it"
            errors.append(
                f"Response{'s' if many else ''} {names} {'are' if many else 'is'} empty: "
                f"write {them} or remove {them}."
            )
        if errors:
            raise forms.ValidationError(errors)
        return responses

    def boxes(self, *, add: bool = False, remove: int | None = None) -> list[dict]:
        """The response textareas to draw: what was sent (one more, or one fewer, when the
        page was asked to add or remove one without JavaScript), each with its letter and
        whether it is at fault."""
        texts = list(self["response"].value() or []) if self.is_bound else []
        if remove is not None and 0 <= remove < len(texts):
            del texts[remove]
        if add:
            texts.append("")
        texts += [""] * (self.SHOWN_EMPTY - len(texts))
        checked = self.is_bound and not add and remove is None
        return [
            {"letter": letter(i), "text": text,
             "invalid": checked and _box_problem(_unix_lines(text)) is not None}
            for i, text in enumerate(texts)
        ]  # fmt: skip

    def api_body(self) -> dict:
        """The best-of-N request the page makes, as the API takes it."""
        return {
            "prompt": self.cleaned_data["prompt"],
            "candidates": self.cleaned_data["response"],
            "normalize": FilterRun.Normalize.LENGTH.value,
        }
