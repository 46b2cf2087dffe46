"""Implicit signals as preferences: `import_signals` on a small file with known pairs."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Label, Pair, Project

ROWS = [
    {"prompt": "Name a fruit.", "response": "apple", "score": 10},
    {"prompt": "Name a fruit.", "response": "a rock", "score": 0},
    {"prompt": "Name a fruit.", "response": "pear, I think", "score": 4},
    {"prompt": [{"role": "user", "content": "Hi"}], "response": "Hello!", "score": 1},
    {"prompt": [{"role": "user", "content": "Hi"}], "response": "Go away.", "score": 0},
    {"prompt": "Alone", "response": "nobody to compare with", "score": 7},
]


def write(tmp_path, rows, name="signals.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_scores_become_labelled_pairs_with_strength_by_gap(db, tmp_path):
    call_command("import_signals", "Signals", write(tmp_path, ROWS), "--source", "upvotes")
    project = Project.objects.get(name="Signals")
    found = {
        (label.pair.response_a, label.pair.response_b): (label.choice, label.strength)
        for label in Label.objects.filter(source="upvotes").select_related("pair")
    }
    # Range 10: gaps of 10, 6, 4 and 1 are 4, 2.4, 1.6 and 0.4 quarters of it.
    assert found == {
        ("apple", "a rock"): ("a", 3),
        ("apple", "pear, I think"): ("a", 2),
        ("a rock", "pear, I think"): ("b", 1),
        ("Hello!", "Go away."): ("a", 0),
    }
    assert Pair.objects.filter(project=project).count() == 4
    call_command("import_signals", "Signals", write(tmp_path, ROWS), "--source", "upvotes")
    assert Label.objects.count() == 4  # again: nothing twice
    call_command("import_signals", "Signals", write(tmp_path, ROWS), "--source", "ratings",
                 "--min-gap", "5")  # fmt: skip
    assert Label.objects.filter(source="ratings").count() == 2 and Pair.objects.count() == 4


def test_a_pair_already_imported_the_other_way_round_gets_the_right_choice(db, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Name a fruit.", "response_a": "a rock",
                                 "response_b": "apple"}) + "\n")  # fmt: skip
    call_command("import_pairs", "Signals", str(pairs))
    call_command("import_signals", "Signals", write(tmp_path, ROWS[:2]), "--source", "upvotes")
    (label,) = Label.objects.filter(source="upvotes").select_related("pair")
    assert label.pair.response_b == "apple" and label.choice == "b"


def test_bad_rows_are_named_and_nothing_is_written(db, tmp_path):
    bad = [*ROWS, {"prompt": "x", "response": "y", "score": "many"}, {"prompt": "x", "score": 1}]
    with pytest.raises(CommandError, match=r"line 7: 'score' must be a number.*\n.*line 8"):
        call_command("import_signals", "Signals", write(tmp_path, bad), "--source", "upvotes")
    assert not Label.objects.exists() and not Pair.objects.exists()
