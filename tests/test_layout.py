"""The house stays readable: files and functions a reader holds in mind, and apps whose top
keeps only what their capabilities share (DESIGN.md, Layout)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = ("annotation", "rewardmodels", "workers", "config")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_TOP_MODULES = 12


def sources():
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_no_file_is_longer_than_a_reader_holds_in_mind():
    long = {
        str(path.relative_to(ROOT)): n
        for path in sources()
        if (n := len(path.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_longer_than_a_screenful_or_two():
    long = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = length
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("app", ["annotation", "rewardmodels"])
def test_an_apps_top_keeps_only_what_its_capabilities_share(app):
    top = sorted(p.name for p in (ROOT / app).glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top
