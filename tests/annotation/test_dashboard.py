"""The lead's pages and API: dashboard, pair review, curation, datasets; and who may see them."""

import io
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.test import Client

from annotation.models import Adjudication, CuratedDataset, Label, Pair
from tests.conftest import client_for, logged_in
from tests.factories import PairFactory, ProjectFactory, length_skewed_pairs


@pytest.fixture
def votes(project):
    """Three pairs: two agreed (a), one contested between two label sources."""
    pairs = PairFactory.create_batch(3, project=project)
    for pair in pairs[:2]:
        Label.objects.create(pair=pair, source="vendor-x", choice="a", strength=3)
        Label.objects.create(pair=pair, source="vendor-y", choice="a", strength=3)
    Label.objects.create(pair=pairs[2], source="vendor-x", choice="a", strength=1)
    Label.objects.create(pair=pairs[2], source="vendor-y", choice="b", strength=1)
    from annotation.agreement.services import consensus_refresh

    consensus_refresh(pair_ids=[p.pk for p in pairs])
    return pairs


def lead_urls(project, pair) -> list[str]:
    return [
        f"/projects/{project.pk}/dashboard/",
        f"/projects/{project.pk}/pairs/{pair.pk}/",
        f"/projects/{project.pk}/curate/",
    ]


def test_dashboard_shows_the_figures_and_the_contested_pair(project, votes, lead):
    page = logged_in(lead).get(f"/projects/{project.pk}/dashboard/").content.decode()
    for text in ("percent agreement", "Fleiss", "Krippendorff", "Difficulty mix", "vendor-x"):
        assert text in page
    assert "66.7%" in page  # two of three pairs agree
    assert "labels too noisy to train on" in page  # below the 70% threshold
    assert votes[2].external_id in page  # contested
    assert "<svg" in page


def test_annotators_cannot_open_lead_pages_or_apis(project, votes, annotator):
    client = logged_in(annotator)
    for url in lead_urls(project, votes[0]):
        assert client.get(url).status_code == 404, url
    api = client_for(annotator)
    for url in (
        f"/api/projects/{project.pk}/agreement/",
        f"/api/projects/{project.pk}/curation-preview/",
        f"/api/projects/{project.pk}/datasets/",
    ):
        assert api.get(url).status_code == 403, url
    decision = api.post(f"/api/pairs/{votes[2].pk}/adjudication/", {"choice": "a"})
    assert decision.status_code == 403
    assert api.post(f"/api/pairs/{votes[2].pk}/gold/", {"gold_choice": "a"}).status_code == 403
    assert not Adjudication.objects.exists()


def test_leads_of_other_projects_see_nothing(votes, project):
    from tests.factories import MembershipFactory

    stranger = MembershipFactory(project=ProjectFactory(), role="lead").user
    for url in lead_urls(project, votes[0]):
        assert logged_in(stranger).get(url).status_code == 404
    assert client_for(stranger).get(f"/api/projects/{project.pk}/agreement/").status_code == 404


def test_anonymous_is_refused(project, votes):
    for url in lead_urls(project, votes[0]):
        assert Client().get(url).status_code == 302
    refused = Client().get(f"/api/projects/{project.pk}/agreement/")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"


def test_names_in_charts_are_escaped(project, lead):
    pair = PairFactory(project=project)
    Label.objects.create(pair=pair, source="<script>alert(1)</script>", choice="a")
    Label.objects.create(pair=pair, source="ok", choice="b")
    page = logged_in(lead).get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_lead_adjudicates_in_the_review_page(project, votes, lead):
    client = logged_in(lead)
    url = f"/projects/{project.pk}/pairs/{votes[2].pk}/"
    page = client.get(url).content.decode()
    assert "vendor-x" in page and "vendor-y" in page
    client.post(url, {"action": "decide", "choice": "b", "note": "B is right"})
    votes[2].consensus.refresh_from_db()
    assert (votes[2].consensus.winner, votes[2].consensus.adjudicated) == ("b", True)
    client.post(url, {"action": "gold", "gold_choice": "b"})
    votes[2].refresh_from_db()
    assert votes[2].gold_choice == "b"


def test_agreement_api(project, votes, lead):
    body = client_for(lead).get(f"/api/projects/{project.pk}/agreement/").json()
    assert body["n_labels"] == 6 and body["difficulty"]["contested"] == 1
    assert body["percent_agreement"] == pytest.approx(2 / 3)


def test_curation_preview_counts_what_the_filters_keep(project, votes, lead):
    api = client_for(lead)
    url = f"/api/projects/{project.pk}/curation-preview/"
    assert api.get(url).json()["count"] == 2
    assert api.get(url, {"difficulty": "hard"}).json()["count"] == 0
    bad = api.get(url, {"min_agreement": "lots"})
    assert bad.status_code == 400 and "min_agreement" in bad.json()
    unknown = api.get(url, {"exclude_sources": "nobody"})
    assert unknown.status_code == 400 and "nobody" in json.dumps(unknown.json())


def test_curate_and_download_through_the_api(project, votes, lead, settings):
    api = client_for(lead)
    created = api.post(
        f"/api/projects/{project.pk}/datasets/",
        {"name": "api-set", "test_fraction": 0.0},
        format="json",
    )
    assert created.status_code == 201, created.json()
    identifier = created.json()["identifier"]
    assert identifier == "api-set@v1"
    jsonl = api.get(f"/api/datasets/{identifier}/download/")
    assert jsonl.streaming  # read from the snapshot a chunk at a time, never whole
    rows = [json.loads(line) for line in b"".join(jsonl.streaming_content).splitlines()]
    assert len(rows) == 2 and {r["split"] for r in rows} == {"train"}
    parquet = api.get(f"/api/datasets/{identifier}/download/", {"format": "parquet"})
    assert pq.read_table(io.BytesIO(b"".join(parquet.streaming_content))).num_rows == 2
    (kept,) = Path(settings.MEDIA_ROOT).rglob("*.parquet")  # made once, kept for the next
    made_at = kept.stat().st_mtime_ns
    again = api.get(f"/api/datasets/{identifier}/download/", {"format": "parquet"})
    assert b"".join(again.streaming_content) == kept.read_bytes()
    assert kept.stat().st_mtime_ns == made_at
    assert api.get(f"/api/datasets/{identifier}/download/", {"format": "xml"}).status_code == 400
    listed = api.get(f"/api/projects/{project.pk}/datasets/").json()
    assert [d["identifier"] for d in listed] == [identifier]
    empty = api.post(
        f"/api/projects/{project.pk}/datasets/",
        {"name": "none", "difficulty": ["hard"]},
        format="json",
    )
    assert empty.status_code == 400 and "keep no pairs" in json.dumps(empty.json())
    assert CuratedDataset.objects.count() == 1


def test_curate_form_and_dataset_page(project, votes, lead):
    client = logged_in(lead)
    response = client.post(
        f"/projects/{project.pk}/curate/",
        {"name": "form-set", "difficulty": ["easy", "medium", "hard"], "test_fraction": "0"},
        follow=True,
    )
    page = response.content.decode()
    assert "form-set@v1" in page and "sha256" in page
    # The manifest summarised: what was kept by difficulty and source, what was left out and
    # why, and the first rows, rendered.
    assert "2 of the 3 pairs considered" in page
    summary = page.split('id="by-difficulty"')[1].split("</table>")[0]
    assert "<td>easy</td><td>2</td><td>100%</td>" in summary
    assert "<td>vendor-x</td><td>2</td>" in page
    left_out = page.split('id="left-out"')[1].split("</table>")[0]
    assert "<td>no majority (contested, not adjudicated)</td><td>1</td>" in left_out
    samples = page.split('id="samples"')[1]
    assert votes[0].response_a in samples and votes[0].response_b in samples
    download = client.get("/datasets/form-set@v1/download/jsonl/")
    assert download.status_code == 200 and b'"chosen"' in b"".join(download.streaming_content)
    assert Pair.objects.count() == 3


def test_curate_form_names_what_is_wrong_as_the_api_does(project, votes, lead):
    """The page's form and the API read the filters through one serializer."""
    client = logged_in(lead)
    form = {"name": "f", "difficulty": ["easy", "medium", "hard"], "min_annotator_kappa": ""}
    for change, message in [
        ({"min_votes": "0"}, "Min votes: Ensure this value is greater than or equal to 1."),
        ({"min_agreement": "lots"}, "Min agreement: A valid number is required."),
        ({"difficulty": []}, "Difficulty: Choose at least one of easy, medium, hard."),
    ]:
        page = client.post(f"/projects/{project.pk}/curate/", {**form, **change})
        assert page.status_code == 200 and message in page.content.decode(), change
    assert not CuratedDataset.objects.exists()
    preview = client_for(lead).get(
        f"/api/projects/{project.pk}/curation-preview/", {"difficulty": ""}
    )
    assert preview.json() == {"difficulty": ["Choose at least one of easy, medium, hard."]}


def test_dataset_pages_and_downloads_are_for_leads_only(project, votes, lead, annotator):
    client_for(lead).post(f"/api/projects/{project.pk}/datasets/", {"name": "mine"}, format="json")
    for url in ("/api/datasets/mine@v1/", "/api/datasets/mine@v1/download/"):
        assert client_for(annotator).get(url).status_code == 403, url
        assert client_for(None).get(url).status_code == 401, url
        assert client_for(lead).get(url).status_code == 200, url
    for url in ("/datasets/mine@v1/", "/datasets/mine@v1/download/jsonl/"):
        assert logged_in(annotator).get(url).status_code == 404, url
        assert logged_in(lead).get(url).status_code == 200, url


def test_admin_pages_list_every_model(admin_user, votes):
    client = logged_in(admin_user)
    for model in (
        "project", "membership", "pair", "assignment", "label", "pairconsensus",
        "adjudication", "consistencycheck", "curateddataset",
    ):  # fmt: skip
        assert client.get(f"/admin/annotation/{model}/").status_code == 200, model


def test_an_implausibly_fast_annotator_is_flagged(project, lead, annotator, other_annotator):
    pairs = PairFactory.create_batch(3, project=project)
    for pair in pairs:
        for person, ms in ((annotator, 150), (other_annotator, 6000)):
            Label.objects.create(pair=pair, annotator=person, choice="a", strength=2,
                                 duration_ms=ms, shown_left="a")  # fmt: skip
    from annotation.agreement.services import consensus_refresh

    consensus_refresh(pair_ids=[p.pk for p in pairs])
    url = f"/projects/{project.pk}/dashboard/"
    page = logged_in(lead).get(url).content.decode()
    assert "1 annotator labels faster than 2 s per label (median): ann." in page
    assert page.count("too fast</span>") == 1
    project.fast_label_seconds = 0  # the lead turns the flag off
    project.save()
    assert 'id="too-fast"' not in logged_in(lead).get(url).content.decode()


def test_after_an_error_the_curate_form_keeps_every_value(project, votes, lead):
    sent = {
        "name": "keep-me", "min_votes": "0", "min_agreement": "0.5", "exclude_ties": "1",
        "difficulty": ["hard"], "exclude_sources": ["vendor-y"], "min_annotator_kappa": "0.2",
        "test_fraction": "0.3", "seed": "7",
    }  # fmt: skip
    page = logged_in(lead).post(f"/projects/{project.pk}/curate/", sent).content.decode()
    assert "Min votes: Ensure this value is greater than or equal to 1." in page
    form = page.split('id="curate-form"')[1].split("</form>")[0]
    for name in ("name", "min_votes", "min_agreement", "min_annotator_kappa", "test_fraction",
                 "seed"):  # fmt: skip
        assert re.search(rf'name="{name}"[^>]*value="{re.escape(sent[name])}"', form), name
    assert re.search(r'name="exclude_ties" value="1" checked', form)
    assert not re.search(r'name="exclude_contested" value="1" checked', form)
    assert re.search(r'value="hard" checked', form) and not re.search(r'value="easy" checked', form)
    assert re.search(r'value="vendor-y" checked', form)
    assert not re.search(r'value="vendor-x" checked', form)


def test_the_curate_form_balances_length_and_the_page_shows_the_counts(project, lead):
    length_skewed_pairs(project)
    client = logged_in(lead)
    form = {"name": "even", "difficulty": ["easy", "medium", "hard"], "test_fraction": "0"}
    page = client.post(
        f"/projects/{project.pk}/curate/", {**form, "balance_length": "1"}, follow=True
    )
    dataset = CuratedDataset.objects.get()
    balance = dataset.manifest["balance_length"]
    assert (balance["chosen_longer_before"], balance["chosen_shorter_before"]) == (42, 12)
    assert (balance["chosen_longer"], balance["chosen_shorter"], balance["equal"]) == (12, 12, 6)
    assert dataset.n_rows == 30
    shown = page.content.decode().split('id="balance-length"')[1].split("</table>")[0]
    assert "<td>train, before</td><td>42</td><td>12</td><td>6</td>" in shown
    assert "30 dropped at random by the seed" in shown
    assert "<td>12</td><td>12</td><td>6</td>" in shown
    plain = client.post(f"/projects/{project.pk}/curate/", {**form, "name": "plain"}, follow=True)
    assert 'id="balance-length"' not in plain.content.decode()
    assert CuratedDataset.objects.get(name="plain").n_rows == 60
    # The curate page offers the option, and says how length is measured.
    curate_page = client.get(f"/projects/{project.pk}/curate/").content.decode()
    assert 'name="balance_length"' in curate_page and "characters" in curate_page


def test_the_curate_page_says_why_pairs_are_left_out_in_its_own_words(project, votes, lead):
    from annotation.agreement.services import consensus_refresh
    from annotation.pairs.services import pair_adjudicate

    def left_out(**asked) -> dict:
        url = f"/api/projects/{project.pk}/curation-preview/"
        return client_for(lead).get(url, {**asked, "test_fraction": "0"}).json()["dropped"]

    assert left_out(min_votes="3") == {"fewer votes than asked for": 3}

    pair_adjudicate(pair=votes[2], lead=None, choice="b")  # the one hard pair, decided
    client = logged_in(lead)
    form = {"name": "one", "difficulty": ["hard"], "test_fraction": "0"}
    client.post(f"/projects/{project.pk}/curate/", form)
    assert CuratedDataset.objects.get(name="one").n_rows == 1
    page = client.get(f"/projects/{project.pk}/curate/").content.decode()
    assert "one@v1</a> · 1 pair ·" in page and "1 pairs" not in page

    split = PairFactory(project=project)  # two votes to one
    for n, choice in enumerate("aab"):
        Label.objects.create(pair=split, source=f"vendor-{n}", choice=choice, strength=2)
    consensus_refresh(pair_ids=[split.pk])
    # The 2:1 pair, and the decided 1:1 one.
    assert left_out(min_agreement="0.9") == {"agreement lower than asked for": 2}


def test_the_api_balances_length_and_previews_the_count(project, lead):
    length_skewed_pairs(project)
    api = client_for(lead)
    preview = api.get(
        f"/api/projects/{project.pk}/curation-preview/",
        {"balance_length": "true", "test_fraction": "0"},
    ).json()
    assert preview["count"] == 30 and preview["dropped"] == {"balancing length (train split)": 30}
    created = api.post(
        f"/api/projects/{project.pk}/datasets/",
        {"name": "api-even", "test_fraction": 0.0, "balance_length": True},
        format="json",
    )
    assert created.status_code == 201, created.json()
    manifest = created.json()["manifest"]
    assert (
        manifest["balance_length"]["chosen_longer"]
        == manifest["balance_length"]["chosen_shorter"]
        == 12
    )
    assert created.json()["n_rows"] == 30
    refused = api.post(
        f"/api/projects/{project.pk}/datasets/",
        {"name": "x", "balance_length": "lots"},
        format="json",
    )
    assert refused.status_code == 400 and "balance_length" in refused.json()
