"""What the product writes, it reads back: curated versions (both column forms, JSONL and
Parquet) into imports and evaluations, label exports into label imports."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from annotation.models import CuratedDataset, Label, Pair, Project
from annotation.pairs.imports import labels_import, pairs_import
from rewardmodels.formats import read_preference_pairs
from tests.factories import PairFactory

HH_ROWS = [
    {
        "chosen": f"\n\nHuman: Question {n}?\n\nAssistant: Sure.\n\nHuman: Go on.\n\n"
        f"Assistant: A careful answer {n}.",
        "rejected": f"\n\nHuman: Question {n}?\n\nAssistant: Sure.\n\nHuman: Go on.\n\n"
        f"Assistant: A careless answer {n}.",
    }
    for n in range(6)
]


def run(*args) -> None:
    call_command(*args, stdout=StringIO(), stderr=StringIO())


def curated_files(project, tmp_path) -> tuple[CuratedDataset, dict]:
    run("curate", project.name, "--name", "again", "--test-fraction", "0")
    dataset = CuratedDataset.objects.get(project=project)
    files = {}
    for fmt in ("jsonl", "parquet"):
        files[fmt] = tmp_path / f"again.{fmt}"
        run("export_dataset", dataset.identifier, "--format", fmt, "--out", str(files[fmt]))
    return dataset, files


def hh_project(tmp_path) -> Project:
    project = Project.objects.create(name="hh")
    source = tmp_path / "hh.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in HH_ROWS))
    with source.open("rb") as stream:
        pairs_import(project=project, stream=stream, filename="hh.jsonl", fmt="hh")
    return project


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_conversational_version_imports_and_evaluates(tmp_path, fmt):
    project = hh_project(tmp_path)
    dataset, files = curated_files(project, tmp_path)
    assert dataset.manifest["format"] == "conversational"
    exported = [json.loads(line) for line in files["jsonl"].read_text().splitlines()]

    # Into a new project: every pair, with its preference as a label, under the same ids.
    fresh = Project.objects.create(name="fresh")
    with files[fmt].open("rb") as stream:
        report = pairs_import(project=fresh, stream=stream, filename=files[fmt].name)
    assert (report.imported, report.skipped, report.errors) == (6, 0, [])
    copies = {p.external_id: p for p in Pair.objects.filter(project=fresh)}
    originals = {p.external_id: p for p in Pair.objects.filter(project=project)}
    assert set(copies) == set(originals)
    for key, copy in copies.items():
        assert copy.prompt == originals[key].prompt  # the same conversation, as messages
        assert {copy.response_a, copy.response_b} == {
            originals[key].response_a,
            originals[key].response_b,
        }
        label = Label.objects.get(pair=copy)
        assert copy.response(label.choice).startswith("A careful answer")

    # Into the project it came from: nothing new.
    with files[fmt].open("rb") as stream:
        again = pairs_import(project=project, stream=stream, filename=files[fmt].name)
    assert (again.imported, again.skipped) == (0, 6)

    # As an evaluation file: chosen and rejected as curated.
    with files[fmt].open("rb") as stream:
        rows = read_preference_pairs(stream, files[fmt].name)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        (e["chosen"][0]["content"], e["rejected"][0]["content"]) for e in exported
    ]
    assert {r["difficulty"] for r in rows} <= {"easy", "medium", "hard"}


def labelled_by(project, tmp_path, choices: list[str]) -> list[Pair]:
    """Pairs of the project, one each with a label from source 'ext' with these choices."""
    pairs = PairFactory.create_batch(len(choices), project=project)
    source = tmp_path / "labels-in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"pair": p.external_id, "annotator": "ext", "choice": c, "strength": 2})
            + "\n"
            for p, c in zip(pairs, choices, strict=True)
        )
    )
    with source.open("rb") as stream:
        labels_import(project=project, stream=stream, filename=source.name)
    return pairs


@pytest.mark.django_db
def test_standard_version_imports_back(tmp_path):
    project = Project.objects.create(name="plain")
    labelled_by(project, tmp_path, ["a", "b", "a", "b"])
    dataset, files = curated_files(project, tmp_path)
    assert dataset.manifest["format"] == "standard"
    fresh = Project.objects.create(name="fresh")
    with files["parquet"].open("rb") as stream:
        report = pairs_import(project=fresh, stream=stream, filename="again.parquet")
    assert report.imported == dataset.n_rows and not report.errors
    assert Label.objects.filter(pair__project=fresh).count() == dataset.n_rows


@pytest.mark.django_db
def test_whole_conversations_without_a_prompt_column(tmp_path):
    """TRL's implicit-prompt form: the prompt is the messages both conversations share."""
    talk = [{"role": "user", "content": "Hi?"}]
    row = {
        "chosen": [*talk, {"role": "assistant", "content": "Hello."}],
        "rejected": [*talk, {"role": "assistant", "content": "Go away."}],
    }
    path = tmp_path / "implicit.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "rejected": row["chosen"]}))
    project = Project.objects.create(name="implicit")
    with path.open("rb") as stream:
        report = pairs_import(project=project, stream=stream, filename=path.name, skip_invalid=True)
    assert report.imported == 1
    assert "share no prompt" in str(report.errors[0]) or "identical" in str(report.errors[0])
    pair = Pair.objects.get(project=project)
    assert pair.prompt == talk
    assert Label.objects.get(pair=pair).choice == ("a" if pair.response_a == "Hello." else "b")


@pytest.mark.django_db
def test_label_export_imports_back(tmp_path):
    project = Project.objects.create(name="labels")
    pairs = labelled_by(project, tmp_path, ["a", "b", "tie"])
    out = tmp_path / "out.jsonl"
    run("export_labels", project.name, "--out", str(out))

    copy = Project.objects.create(name="copy")
    for pair in pairs:
        PairFactory(project=copy, external_id=pair.external_id)
    with out.open("rb") as stream:
        report = labels_import(project=copy, stream=stream, filename=out.name)
    assert (report.imported, report.errors) == (3, [])
    exported = sorted(Label.objects.filter(pair__project=project).values_list("choice", "strength"))
    imported = sorted(Label.objects.filter(pair__project=copy).values_list("choice", "strength"))
    assert exported == imported


def as_format(path, fmt: str):
    """The exported JSONL file as the same rows in `fmt`, as a spreadsheet or dataframe
    would write them (CSV: every cell text, an empty cell for null)."""
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    if fmt == "jsonl":
        return path
    copy = path.with_suffix(f".{fmt}")
    if fmt == "csv":
        with copy.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), copy)
    return copy


def label_export(project, tmp_path, name: str) -> list[tuple]:
    out = tmp_path / f"{name}.jsonl"
    run("export_labels", project.name, "--out", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return [
        (r["pair"], r["annotator"], r["choice"], r["shown_left"], r["duration_ms"]) for r in rows
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_labels_keep_the_side_shown_and_the_time_taken_through_export_and_import(tmp_path, fmt):
    project = Project.objects.create(name="seen")
    pairs = PairFactory.create_batch(3, project=project)
    for pair, (shown_left, duration_ms) in zip(
        pairs, [("a", 12_345), ("b", 0), ("", None)], strict=True
    ):
        Label.objects.create(
            pair=pair, source="vendor", choice="b", shown_left=shown_left, duration_ms=duration_ms
        )
    first = label_export(project, tmp_path, "first")
    assert [row[3:] for row in first] == [("a", 12_345), ("b", 0), (None, None)]

    fresh = Project.objects.create(name="fresh")
    for pair in pairs:
        PairFactory(project=fresh, external_id=pair.external_id)
    run("import_labels", fresh.name, str(as_format(tmp_path / "first.jsonl", fmt)))
    assert label_export(fresh, tmp_path, "again") == first


@pytest.mark.django_db
def test_kept_rows_of_a_filter_feed_another_filter_and_a_round(tmp_path):
    """A filter's download (prompt, response, reward, rank; chat prompts too) is a candidates
    file: for another filter run, and for a round of policy outputs."""
    import numpy as np

    from annotation.rounds.services import candidates_import
    from rewardmodels.formats import read_candidates, write_jsonl
    from workers.ml.selection import filter_rows

    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Name a fruit."}]  # fmt: skip
    candidates = [
        {"prompt": prompt, "response": response, "group": group}
        for group, prompt in enumerate(["Name a colour.", chat])
        for response in ("one", "two", "three", "four")
    ]
    rewards = np.arange(len(candidates), dtype=float)
    kept = filter_rows(candidates, rewards, np.ones(len(candidates)), 0.5, None)
    kept_file = tmp_path / "filter-1-kept.jsonl"
    write_jsonl(kept_file, kept)

    with kept_file.open("rb") as stream:
        again = read_candidates(stream, kept_file.name)
    assert [(r["prompt"], r["response"]) for r in again] == [
        (r["prompt"], r["response"]) for r in kept
    ]
    assert len({r["group"] for r in again}) == 2  # rows of one prompt stay one group

    project = Project.objects.create(name="loop")
    with kept_file.open("rb") as stream:
        report = candidates_import(
            project=project, stream=stream, filename=kept_file.name, round_name="r1"
        )
    assert report.errors == [] and project.rounds.get().n_candidates == len(kept) == 4
