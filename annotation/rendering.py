"""Render untrusted Markdown (prompts, LLM responses, guidelines) to inert HTML, and show
URLs without the passwords they may carry."""

import re

import nh3
from markdown_it import MarkdownIt

# Raw HTML in the source is escaped, not passed through: a response that contains
# <script> or <img onerror> shows as text. nh3 then cleans what Markdown itself produced
# (for example javascript: links) down to an allow-list.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(
    "table"
)
_ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
    "del", "img",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"alt", "title"}, "code": {"class"}}


def render_markdown(text: str) -> str:
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def render_prompt(prompt: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """A prompt as a list of turns, each with its role and rendered content."""
    if isinstance(prompt, str):
        return [{"role": "user", "html": render_markdown(prompt)}]
    return [{"role": m["role"], "html": render_markdown(m["content"])} for m in prompt]


def split_at_question(turns: list[dict]) -> tuple[list[dict], list[dict]]:
    """A conversation's turns before its last user turn (the question the responses answer),
    and the rest, from that turn on. Without a user turn, the last turn is the one kept."""
    roles = [turn["role"] for turn in turns]
    last = len(roles) - 1 - roles[::-1].index("user") if "user" in roles else len(turns) - 1
    return turns[: max(last, 0)], turns[max(last, 0) :]


# A table cell shows this much of a text (characters of its Markdown) and, folded above the
# last user turn, at most this many of the turns before it.
PREVIEW_CHARS = 280
PREVIEW_TURNS = 6


def render_preview(text: str) -> str:
    """The start of a text for a table cell, rendered like the whole of it."""
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS].rstrip() + " …"
    return render_markdown(text)


def prompt_preview(prompt: str | list[dict[str, str]]) -> tuple[list[dict], int]:
    """A prompt for a table cell: its turns, and how many come before its last user turn.
    Those earlier turns are marked `folded` (only the latest PREVIEW_TURNS of them are
    rendered; the first one rendered says in `left_out` how many come before it); the last
    user turn and any after it stay in view."""
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    earlier, question = split_at_question(turns)
    folded = earlier[-PREVIEW_TURNS:]
    cells = [
        {
            "role": turn["role"],
            "html": render_preview(turn["content"]),
            "folded": index < len(folded),
        }
        for index, turn in enumerate(folded + question)
    ]
    if folded:
        cells[0]["left_out"] = len(earlier) - len(folded)
    return cells, len(earlier)


# A password written into a URL (scheme://user:password@host, as a judge's base URL behind
# basic auth may hold one).
_URL_PASSWORD = re.compile(r"(?<=://)([^\s/:@]*):[^\s/]+@")
URL_PASSWORD_MASK = "***"


def url_passwords_masked(text: str) -> str:
    """`text` with the password of every URL in it shown as URL_PASSWORD_MASK."""
    return _URL_PASSWORD.sub(rf"\1:{URL_PASSWORD_MASK}@", text)
