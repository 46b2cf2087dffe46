"""curate, export_dataset, and the agreement command, as pipelines use them."""

import json
from io import StringIO

import datasets
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.curation.selectors import dataset_rows
from annotation.labelling.services import assignment_next, label_submit
from annotation.models import CuratedDataset, Label, Pair
from annotation.pairs.services import pair_adjudicate
from tests.factories import MembershipFactory, PairFactory, length_skewed_pairs

REQUIRED_AGREEMENT_KEYS = {
    "n_labels", "n_pairs", "n_annotators", "percent_agreement", "majority_2to1_rate",
    "fleiss_kappa", "krippendorff_alpha", "cohen_kappa", "annotators", "difficulty",
}  # fmt: skip


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


@pytest.fixture
def labelled(project):
    """Twelve pairs on six prompts, three votes each: nine unanimous (strength 3), a 2:1 at
    strength 0, a 2:1 with a tie vote, and a 1:1:1 split."""
    people = [MembershipFactory(project=project, user__username=f"p{i}").user for i in range(3)]
    pairs = [PairFactory(project=project, prompt=f"prompt {n // 2}") for n in range(12)]
    position = {pair.pk: n for n, pair in enumerate(pairs)}
    plan = {2: "aab", 3: "bbt", 4: "abt"}
    for person_index, person in enumerate(people):
        while (assignment := assignment_next(project=project, annotator=person)) is not None:
            n = position[assignment.pair_id]
            answers = plan.get(n, "aaa" if n % 2 else "bbb")
            side = {"a": "a", "b": "b", "t": "tie"}[answers[person_index]]
            screen = "tie" if side == "tie" else ("left" if assignment.left == side else "right")
            label_submit(
                assignment_id=assignment.pk,
                annotator=person,
                screen_choice=screen,
                strength=0 if n == 2 else 3,
            )
    return pairs


def test_agreement_json_has_every_key(project, labelled):
    report = json.loads("\n".join(run("agreement", project.name, "--json")))
    assert set(report) >= REQUIRED_AGREEMENT_KEYS
    assert report["n_labels"] == 36 and report["n_pairs"] == 12 and report["n_annotators"] == 3
    assert {a["name"] for a in report["annotators"]} == {"p0", "p1", "p2"}
    assert set(report["annotators"][0]) >= {
        "name", "n", "agreement_with_majority", "left_rate", "longer_rate", "gold_accuracy",
    }  # fmt: skip
    assert set(report["difficulty"]) == {"easy", "medium", "hard", "contested"}
    assert report["difficulty"]["contested"] == 1
    assert {(k["a"], k["b"]) for k in report["cohen_kappa"]} == {
        ("p0", "p1"),
        ("p0", "p2"),
        ("p1", "p2"),
    }


def test_agreement_on_an_empty_project_is_nulls_not_a_crash(project):
    report = json.loads("\n".join(run("agreement", project.name, "--json")))
    assert report["n_labels"] == 0
    assert report["fleiss_kappa"] is None and report["percent_agreement"] is None
    with pytest.raises(CommandError, match="No project named or numbered 'Ghost'"):
        run("agreement", "Ghost")


def test_curate_then_export_in_every_format(project, labelled, tmp_path):
    lines = run("curate", project.name, "--name", "clean", "--test-fraction", "0.5")
    identifier = lines[-1]
    assert identifier == "clean@v1"
    dataset = CuratedDataset.objects.get(identifier=identifier)
    assert dataset.n_rows == 11  # the 1:1:1 split has no winner
    assert dataset.manifest["dropped"] == {"no majority (contested, not adjudicated)": 1}

    jsonl = tmp_path / "clean.jsonl"
    run("export_dataset", identifier, "--format", "jsonl", "--out", str(jsonl))
    rows = datasets.load_dataset("json", data_files=str(jsonl), split="train")
    columns = {"prompt", "chosen", "rejected", "margin", "difficulty", "agreement", "n_votes"}
    assert columns | {"pair_id", "split"} <= set(rows.column_names)

    parquet = tmp_path / "clean.parquet"
    run("export_dataset", identifier, "--format", "parquet", "--out", str(parquet))
    assert datasets.load_dataset("parquet", data_files=str(parquet), split="train").num_rows == 11

    folder = tmp_path / "clean-hf"
    run("export_dataset", identifier, "--format", "hf", "--out", str(folder))
    splits = datasets.load_from_disk(str(folder))
    assert splits["train"].num_rows + splits["test"].num_rows == 11

    # The split is by prompt: no prompt on both sides.
    by_split = {"train": set(), "test": set()}
    for row in rows:
        by_split[row["split"]].add(row["prompt"])
    assert by_split["train"] and by_split["test"]
    assert not by_split["train"] & by_split["test"]

    # chosen is the majority's response.
    pair = Pair.objects.get(external_id=rows[0]["pair_id"])
    assert rows[0]["chosen"] == pair.response(pair.consensus.winner)


def test_export_refuses_to_overwrite_without_force(project, labelled, tmp_path):
    identifier = run("curate", project.name, "--name", "clean")[-1]
    out = tmp_path / "x.jsonl"
    out.write_text("keep me")
    with pytest.raises(CommandError, match="--force"):
        run("export_dataset", identifier, "--out", str(out))
    assert out.read_text() == "keep me"
    run("export_dataset", identifier, "--out", str(out), "--force")
    assert out.read_text() != "keep me"


def test_versions_are_immutable_and_recurating_makes_a_new_one(project, labelled, lead):
    first = CuratedDataset.objects.get(identifier=run("curate", project.name, "--name", "d")[-1])
    contested = Pair.objects.get(consensus__contested=True)
    pair_adjudicate(pair=contested, lead=lead, choice="a")
    second = CuratedDataset.objects.get(identifier=run("curate", project.name, "--name", "d")[-1])
    assert (first.identifier, second.identifier) == ("d@v1", "d@v2")
    assert (first.n_rows, second.n_rows) == (11, 12)  # the decision settles the split pair
    first.refresh_from_db()
    assert first.n_rows == 11
    from annotation.curation.selectors import dataset_rows

    assert len(dataset_rows(first)) == 11  # the snapshot still matches its sha256


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (["--min-agreement", "0.9"], 9),  # unanimous only
        (["--exclude-ties"], 10),
        (["--difficulty", "easy"], 9),
        (["--difficulty", "hard,medium"], 2),
        (["--min-votes", "4"], None),
        (["--exclude-contested"], 11),
    ],
)
def test_filters(project, labelled, args, kept):
    if kept is None:
        with pytest.raises(CommandError, match="keep no pairs"):
            run("curate", project.name, "--name", "f", *args)
        assert not CuratedDataset.objects.exists()
    else:
        run("curate", project.name, "--name", "f", *args)
        assert CuratedDataset.objects.get().n_rows == kept


def test_exclude_sources_and_min_kappa(project, labelled):
    pair = labelled[0]
    Label.objects.create(pair=pair, source="vendor", choice="b")
    with pytest.raises(CommandError, match="No label source named nobody"):
        run("curate", project.name, "--name", "s", "--exclude-sources", "nobody")
    run("curate", project.name, "--name", "s", "--exclude-sources", "vendor")
    manifest = CuratedDataset.objects.get().manifest
    assert "vendor" not in manifest["by_label_source"]
    assert manifest["filters"]["exclude_sources"] == ["vendor"]


def test_bad_names_and_unknowns_are_clear_errors(project, labelled, tmp_path):
    with pytest.raises(CommandError, match="lower-case"):
        run("curate", project.name, "--name", "Bad Name")
    with pytest.raises(CommandError, match="No project named"):
        run("curate", "Ghost", "--name", "x")
    with pytest.raises(CommandError, match="No dataset version 'nope@v1'"):
        run("export_dataset", "nope@v1", "--out", str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="difficulty"):
        run("curate", project.name, "--name", "x", "--difficulty", "trivial")


def length_tally(rows) -> dict[str, int]:
    """Rows by whether the chosen response is longer than the rejected one, in characters."""
    tally = {"chosen_longer": 0, "chosen_shorter": 0, "equal": 0}
    for row in rows:
        chosen, rejected = len(row["chosen"]), len(row["rejected"])
        which = (
            "equal"
            if chosen == rejected
            else "chosen_longer"
            if chosen > rejected
            else "chosen_shorter"
        )
        tally[which] += 1
    return tally


def in_split(rows, split: str) -> list[dict]:
    return [row for row in rows if row["split"] == split]


def test_balance_length_evens_the_train_split_and_leaves_the_test_split(project):
    length_skewed_pairs(project)
    common = ("--test-fraction", "0.25", "--seed", "3")
    plain = CuratedDataset.objects.get(
        identifier=run("curate", project.name, "--name", "plain", *common)[-1]
    )
    lines = run("curate", project.name, "--name", "even", *common, "--balance-length")
    even = CuratedDataset.objects.get(identifier=lines[-1])
    plain_rows, even_rows = dataset_rows(plain), dataset_rows(even)

    before, after = (
        length_tally(in_split(plain_rows, "train")),
        length_tally(in_split(even_rows, "train")),
    )
    assert before["chosen_longer"] > before["chosen_shorter"] + 10  # the skew is there
    assert abs(after["chosen_longer"] - after["chosen_shorter"]) <= 1
    assert after["equal"] == before["equal"] > 0  # equal lengths are kept
    dropped = before["chosen_longer"] - after["chosen_longer"]
    assert after["chosen_shorter"] == before["chosen_shorter"]  # only the excess side loses
    # The test split is the one a version without balancing has, skew and all.
    assert in_split(even_rows, "test") == in_split(plain_rows, "test")
    assert (even.n_test, even.n_train, even.n_rows) == (
        plain.n_test,
        plain.n_train - dropped,
        plain.n_rows - dropped,
    )
    # What stays is unchanged, row for row.
    plain_by_id = {row["pair_id"]: row for row in plain_rows}
    assert all(plain_by_id[row["pair_id"]] == row for row in even_rows)

    manifest = even.manifest
    assert manifest["balance_length"] == {
        "measure": "characters of the response text",
        "split": "train",
        "chosen_longer_before": before["chosen_longer"],
        "chosen_shorter_before": before["chosen_shorter"],
        "dropped": dropped,
        **after,
        "test": length_tally(in_split(plain_rows, "test")),
    }
    assert manifest["filters"]["balance_length"] is True
    assert manifest["dropped"]["balancing length (train split)"] == dropped
    assert manifest["rows"] == even.n_rows
    assert sum(manifest["by_difficulty"].values()) == even.n_rows
    assert "train split balanced for length" in lines[-3]
    # Without the option, nothing about balancing.
    assert (
        "balance_length" not in plain.manifest
        and plain.manifest["filters"]["balance_length"] is False
    )
    assert "balancing length (train split)" not in plain.manifest["dropped"]


def test_balance_length_drops_at_random_by_the_seed(project):
    length_skewed_pairs(project)
    kept = {}
    for name, seed in (("first", "0"), ("again", "0"), ("other", "1")):
        identifier = run(
            "curate",
            project.name,
            "--name",
            name,
            "--test-fraction",
            "0",
            "--seed",
            seed,
            "--balance-length",
        )[-1]
        dataset = CuratedDataset.objects.get(identifier=identifier)
        assert dataset.manifest["balance_length"]["chosen_longer"] == 12  # 42 longer, 12 shorter
        kept[name] = (dataset.sha256, {row["pair_id"] for row in dataset_rows(dataset)})
    assert kept["first"] == kept["again"]  # the same seed drops the same pairs
    assert kept["first"][1] != kept["other"][1]  # another seed, other pairs
