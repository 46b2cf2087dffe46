"""What every boundary checks in text from outside (request bodies, query strings, imported
files) before it goes near the database: PostgreSQL refuses NUL characters, UTF-8 has no
unpaired surrogates, and a deeply nested document costs recursion to take apart."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (\\ud800-\\udfff), which is not text"
    return None


def value_problem(value, max_depth: int | None = None) -> str | None:
    """Why a parsed document (dicts, lists, strings, numbers) cannot be taken, or None: a
    string (key or value) text_problem refuses, or nesting deeper than max_depth
    (JSON_MAX_DEPTH by default). Walks without recursion."""
    limit = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict | list):
            if depth > limit:
                return f"nested deeper than {limit} levels"
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


class CheckedJSONParser(JSONParser):
    """DRF's JSON parser, answering 400 for a body nested too deeply to parse or holding text
    the database cannot store (instead of a 500 from deep in the stack)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {settings.JSON_MAX_DEPTH} levels.") from None
        problem = value_problem(data)
        if problem:
            raise ParseError(f"The JSON body {problem}.")
        return data
