"""Curation by the project's consensus rule: a weighted rule's winners, margins and confidence
in the version, annotators left out by their estimated reliability, pairs left out by their
confidence, and the manifest's record of the rule."""

from io import StringIO

import datasets
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.agreement.maths import UNKNOWN_STRENGTH
from annotation.agreement.trust import ESTIMATORS
from annotation.curation.selectors import dataset_rows, held_out_rows
from annotation.models import CuratedDataset, Pair, Project, Round
from tests.annotation.test_weighted_consensus import CARELESS_CROWD, store_crowd
from tests.conftest import client_for, logged_in
from tests.factories import simulated_crowd

CAREFUL = [f"rater{r}" for r in range(6)]
CARELESS = ["rater6", "rater7", "rater8"]  # two click at random, one always picks the left


def curate(project, name: str, *args) -> CuratedDataset:
    out = StringIO()
    call_command("curate", project.name, "--name", name, *args, stdout=out, stderr=StringIO())
    return CuratedDataset.objects.get(identifier=out.getvalue().strip().splitlines()[-1])


def use_rule(project, rule: str) -> None:
    """The project's consensus rule, without refitting the live consensus: curation fits its
    own."""
    Project.objects.filter(pk=project.pk).update(consensus_rule=rule)
    project.refresh_from_db()


def right_share(dataset: CuratedDataset, truth: np.ndarray) -> float:
    """Share of all the crowd's pairs that are in the version with the better response
    chosen (the stored responses read "First answer i" and "Second answer i")."""
    right = 0
    for row in dataset_rows(dataset):
        i = int(row["pair_id"].removeprefix("crowd-"))
        right += row["chosen"].startswith("First") == (truth[i] == 0)
    return right / truth.size


@pytest.fixture
def crowd(project):
    crowd = simulated_crowd(300, CARELESS_CROWD, (3, 5), np.random.default_rng(0))
    store_crowd(project, crowd)
    return crowd


def test_every_weighted_rule_has_an_estimator():
    weighted = set(Project.ConsensusRule.values) - {Project.ConsensusRule.COUNT}
    assert set(ESTIMATORS) == weighted


@pytest.mark.parametrize(
    ("rule", "parameters"),
    [
        ("dawid_skene", {"iterations": 100, "tol": 1e-6, "smoothing": 2.0}),
        ("mace", {"iterations": 50, "tol": 1e-6, "method": "vb", "alpha": 0.5, "beta": 0.5,
                  "strategy_prior": 10.0, "seed": 0}),
    ],
)  # fmt: skip
def test_a_weighted_rule_curates_winners_closer_to_the_truth(project, crowd, rule, parameters):
    counted = curate(project, "counted", "--test-fraction", "0")
    use_rule(project, rule)
    weighed = curate(project, "weighed", "--test-fraction", "0")
    by_count, by_rule = right_share(counted, crowd["truth"]), right_share(weighed, crowd["truth"])
    assert by_rule >= by_count + 0.03, (by_count, by_rule)
    assert counted.manifest["consensus"] == {"rule": "count"}
    assert weighed.manifest["consensus"] == {"rule": rule, **parameters}
    assert weighed.manifest["notes"] == []
    for row in dataset_rows(weighed):
        assert 0.0 <= row["confidence"] <= 1.0
        # The margin is the rule's: confidence × the scale's middle (no strengths given) / 3.
        assert row["margin"] == pytest.approx(row["confidence"] * UNKNOWN_STRENGTH / 3, abs=1e-5)
    for row in dataset_rows(counted):
        assert row["confidence"] == row["agreement"]  # the winner's share of the votes


def test_min_annotator_reliability_leaves_out_the_careless_and_names_them(project, crowd):
    use_rule(project, "dawid_skene")
    kept = curate(project, "reliable", "--min-annotator-reliability", "0.7")
    manifest = kept.manifest
    assert manifest["dropped_annotators"] == CARELESS
    assert set(manifest["by_label_source"]) == set(CAREFUL)
    assert manifest["filters"]["min_annotator_reliability"] == 0.7
    assert manifest["notes"] == []
    everyone = curate(project, "everyone")
    assert everyone.manifest["dropped_annotators"] == []
    assert set(everyone.manifest["by_label_source"]) == set(CAREFUL + CARELESS)
    low_bar = curate(project, "low-bar", "--min-annotator-reliability", "0.1")
    assert low_bar.manifest["dropped_annotators"] == []
    assert low_bar.sha256 == everyone.sha256  # nobody below it: the same rows


def test_min_confidence_leaves_out_the_pairs_the_rule_is_unsure_of(project, crowd):
    use_rule(project, "dawid_skene")
    plain = curate(project, "plain", "--test-fraction", "0")
    sure = curate(project, "sure", "--test-fraction", "0", "--min-confidence", "0.95")
    unsure = [row for row in dataset_rows(plain) if row["confidence"] < 0.95]
    assert unsure, "the crowd leaves some pairs in doubt"
    assert sure.manifest["dropped"]["confidence lower than asked for"] == len(unsure)
    assert sure.n_rows == plain.n_rows - len(unsure)
    assert all(row["confidence"] >= 0.95 for row in dataset_rows(sure))


def test_too_few_labels_keep_the_head_count_and_the_manifest_says_why(project):
    one_vote_each = simulated_crowd(40, CARELESS_CROWD, 1, np.random.default_rng(2))
    store_crowd(project, one_vote_each)
    use_rule(project, "mace")
    dataset = curate(project, "thin", "--min-annotator-reliability", "0.7")
    manifest = dataset.manifest
    assert manifest["consensus"] == {
        "rule": "count",
        "asked": "mace",
        "why": "too few pairs with two or more votes",
    }
    assert manifest["dropped_annotators"] == []
    assert len(manifest["notes"]) == 1 and "too few pairs" in manifest["notes"][0]
    assert set(manifest["dropped"]) <= {"consensus is a tie"}  # a single tie vote
    assert dataset.n_rows + sum(manifest["dropped"].values()) == 40
    assert all(row["confidence"] == 1.0 for row in dataset_rows(dataset))  # one vote each


def test_every_export_and_the_rounds_held_out_rows_carry_confidence(project, crowd, tmp_path):
    use_rule(project, "dawid_skene")
    identifier = curate(project, "cols", "--test-fraction", "0.3").identifier
    for fmt, out in (("jsonl", "c.jsonl"), ("parquet", "c.parquet"), ("hf", "c-hf")):
        call_command("export_dataset", identifier, "--format", fmt, "--out", str(tmp_path / out),
                     stdout=StringIO())  # fmt: skip
    jsonl = datasets.load_dataset("json", data_files=str(tmp_path / "c.jsonl"), split="train")
    parquet = datasets.load_dataset("parquet", data_files=str(tmp_path / "c.parquet"))["train"]
    splits = datasets.load_from_disk(str(tmp_path / "c-hf"))
    for table in (jsonl, parquet, splits["train"], splits["test"]):
        assert {"margin", "confidence", "agreement", "n_votes"} <= set(table.column_names)

    round_ = Round.objects.create(project=project, name="r1", held_out_share=0.2)
    Pair.objects.filter(project=project, external_id__in=[f"crowd-{i}" for i in range(30)]).update(
        held_out=True, round=round_
    )
    rows = held_out_rows(round_)
    assert rows and all(0.0 <= row["confidence"] <= 1.0 for row in rows)


def test_the_preview_and_the_pages_show_the_rule_and_whom_it_leaves_out(project, crowd, lead):
    use_rule(project, "dawid_skene")
    url = f"/api/projects/{project.pk}/curation-preview/"
    preview = client_for(lead).get(url, {"min_annotator_reliability": "0.7"}).json()
    assert preview["dropped_annotators"] == CARELESS and preview["notes"] == []
    assert preview["consensus"]["rule"] == "dawid_skene"
    assert client_for(lead).get(url, {"min_confidence": "1"}).json()["dropped"][
        "confidence lower than asked for"
    ] > 0  # fmt: skip

    client = logged_in(lead)
    page = client.get(f"/projects/{project.pk}/curate/").content.decode()
    assert 'name="min_annotator_reliability"' in page and 'name="min_confidence"' in page
    form = {"name": "page-set", "difficulty": ["easy", "medium", "hard"],
            "min_annotator_reliability": "0.7", "min_confidence": "0.5"}  # fmt: skip
    client.post(f"/projects/{project.pk}/curate/", form)
    dataset = CuratedDataset.objects.get(name="page-set")
    assert dataset.manifest["filters"]["min_confidence"] == 0.5
    assert dataset.manifest["dropped_annotators"] == CARELESS
    shown = client.get(f"/datasets/{dataset.identifier}/").content.decode()
    assert "<code>confidence</code>" in shown and "<th>Confidence</th>" in shown
    rule = shown.split('id="consensus-rule">')[1].split("</p>")[0]
    assert rule.startswith("Consensus by dawid_skene (") and "iterations 100" in rule
    assert "rater6, rater7, rater8" in shown


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_confidence", 2, "less than or equal to 1"),
        ("min_annotator_reliability", -1, "greater than or equal to 0"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_made(project, crowd, lead, field, value, message):
    api = client_for(lead)
    made = api.post(f"/api/projects/{project.pk}/datasets/", {"name": "bad", field: value},
                    format="json")  # fmt: skip
    assert made.status_code == 400 and message in str(made.json()[field]), made.json()
    preview = api.get(f"/api/projects/{project.pk}/curation-preview/", {field: value})
    assert preview.status_code == 400 and field in preview.json()
    page = logged_in(lead).post(
        f"/projects/{project.pk}/curate/",
        {"name": "bad", "difficulty": ["easy", "medium", "hard"], field: str(value)},
    )
    label = field.replace("_", " ").capitalize()
    assert f"{label}: Ensure this value is {message}" in page.content.decode()
    option = "--" + field.replace("_", "-")
    with pytest.raises(CommandError, match=f"{field}.*must be between 0 and 1"):
        curate(project, "bad", option, str(value))
    assert not CuratedDataset.objects.exists()
