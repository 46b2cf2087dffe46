"""What the model got wrong: an evaluation keeps each pair's result, and its page and the API
list the wrong pairs, the most confident mistakes first, filtered, with links to the pairs'
review pages. Evaluations run inline with the model trained in the test session."""

import json
import re
from pathlib import Path

import pytest

from rewardmodels.evaluation.services import evaluation_create
from rewardmodels.models import EvaluationRun, RewardModel, TrainingRun
from tests.conftest import client_for, logged_in
from tests.factories import MembershipFactory, PairFactory, separable_rows
from tests.rewardmodels.test_jobs import upload
from tests.rewardmodels.test_model_pages import figures, registered, version

SCRIPT = '<script>alert("pwned")</script>'


def flipped_rows(n: int) -> list[dict]:
    """Separable pairs, every second one with the curt answer marked chosen (which the model
    gets wrong), every fourth with that curt answer made the longer of the two."""
    rows = separable_rows(n, seed=3)
    for i, row in enumerate(rows):
        if i % 2:
            row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
        if i % 4 == 3:
            row["chosen"] += " and plum" * 30
    return rows


def evaluated(reward_model, **data) -> EvaluationRun:
    evaluation = evaluation_create(reward_model=reward_model, user=None, **data)
    evaluation.refresh_from_db()
    assert evaluation.status == EvaluationRun.Status.SUCCEEDED, evaluation.error
    return evaluation


def shown_rows(page: str) -> list[str]:
    table = page.split('id="wrong-table"')[1].split("</table>")[0]
    return table.split('<tr class="wrong-pair">')[1:]


def gaps(page: str) -> list[float]:
    return [float(re.search(r'class="gap">([^<]+)<', row)[1]) for row in shown_rows(page)]


def kept(evaluation: EvaluationRun) -> list[dict]:
    lines = Path(evaluation.pair_results_file).read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def on_file(reward_model, eager) -> EvaluationRun:
    return evaluated(reward_model, upload=upload("pairs.jsonl", flipped_rows(60)))


@pytest.mark.django_db(transaction=True)
def test_the_page_lists_the_wrong_pairs_most_confident_first(on_file, lead):
    results = kept(on_file)
    n, accuracy = on_file.metrics["n"], on_file.metrics["accuracy"]
    wrong = [r for r in results if not r["right"]]
    assert len(results) == n == 60 and len(wrong) == n - round(accuracy * n) > 25
    assert sorted(r["index"] for r in results) == list(range(n))
    client = logged_in(lead)
    first = client.get(f"/evaluations/{on_file.pk}/").content.decode()
    count = first.split('id="wrong-count"')[1].split("</p>")[0]
    assert f"<strong>{len(wrong)}</strong> wrong pairs of 60" in count
    assert len(shown_rows(first)) == 25 and 'rel="next"' in first
    second = client.get(f"/evaluations/{on_file.pk}/?page=2").content.decode()
    shown = gaps(first) + gaps(second)
    assert len(shown) == len(wrong) and shown == sorted(shown) and shown[0] < 0
    assert shown[0] == pytest.approx(min(r["gap"] for r in results), abs=1e-3)
    # A file's pairs are rows of the file: no review page to link to.
    assert "row " in shown_rows(first)[0] and "pair-link" not in first
    assert "Gladly!" in shown_rows(first)[0].split("</td>")[3]  # the rejected, polite answer


@pytest.mark.django_db(transaction=True)
def test_the_difficulty_and_length_filters_narrow_the_list(on_file, lead, monkeypatch):
    from rewardmodels.evaluation import views

    wrong = [r for r in kept(on_file) if not r["right"]]
    client = logged_in(lead)
    for query, wanted in [
        ("difficulty=hard", [r for r in wrong if r["difficulty"] == "hard"]),
        ("longer=yes", [r for r in wrong if r["chosen_longer"]]),
        ("longer=no", [r for r in wrong if not r["chosen_longer"]]),
        ("difficulty=easy&longer=yes",
         [r for r in wrong if r["difficulty"] == "easy" and r["chosen_longer"]]),
    ]:  # fmt: skip
        assert 0 < len(wanted) < len(wrong), query
        page = client.get(f"/evaluations/{on_file.pk}/?{query}").content.decode()
        count = page.split('id="wrong-count"')[1].split("</p>")[0]
        assert f"<strong>{len(wanted)}</strong> of the {len(wrong)} wrong pairs match" in count
        assert gaps(page) == pytest.approx([r["gap"] for r in wanted][:25], abs=1e-3), query
    longer = client.get(f"/evaluations/{on_file.pk}/?longer=yes").content.decode()
    assert all("chosen longer" in row for row in shown_rows(longer))
    monkeypatch.setattr(views, "WRONG_PAIRS_PER_PAGE", 4)  # the pages keep the filter
    page = client.get(f"/evaluations/{on_file.pk}/?longer=no").content.decode()
    assert "?longer=no&amp;page=2#wrong-pairs" in page
    page = client.get(f"/evaluations/{on_file.pk}/?longer=no&page=2").content.decode()
    assert gaps(page) == pytest.approx(
        [r["gap"] for r in wrong if not r["chosen_longer"]][4:8], abs=1e-3
    )
    # A filter the page does not know shows every wrong pair.
    page = client.get(f"/evaluations/{on_file.pk}/?difficulty=bogus").content.decode()
    assert f"<strong>{len(wrong)}</strong> wrong pairs of 60" in page


@pytest.fixture
def product_pairs(project, trained_model):
    """A version of `project` whose votes favour the curt answer on every third pair (the
    model's mistakes), one of them with a script in it; and the session's model on it."""
    from annotation.agreement.services import consensus_refresh
    from annotation.curation.selection import CurationFilters
    from annotation.curation.services import dataset_curate
    from annotation.models import Label

    for i, row in enumerate(separable_rows(30, seed=8)):
        curt = row["rejected"] + (f" {SCRIPT}" if i == 3 else "")
        pair = PairFactory(
            project=project, prompt=f"{row['prompt']} <b>{i}</b>", response_a=row["chosen"],
            response_b=curt,
        )  # fmt: skip
        Label.objects.create(pair=pair, source="imported", choice="b" if i % 3 == 0 else "a")
    consensus_refresh(pair_ids=project.pairs.values_list("id", flat=True))
    dataset = dataset_curate(
        project=project, name="votes", filters=CurationFilters(test_fraction=0.9), user=None
    )
    run = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.SUCCEEDED)
    model = RewardModel.objects.create(
        identifier="rm-1-votes-v1", run=run, project=project, dataset=dataset,
        base_model=run.base_model, artifact=str(trained_model[0]),
    )  # fmt: skip
    return model, dataset


@pytest.mark.django_db(transaction=True)
def test_a_product_pair_links_to_its_review_page_and_model_text_is_escaped(
    product_pairs, project, lead, annotator, eager
):
    from annotation.models import Pair

    model, dataset = product_pairs
    evaluation = evaluated(model, dataset=dataset)
    results = kept(evaluation)
    assert len(results) == dataset.n_test
    by_pk = {pair.pk: pair for pair in Pair.objects.filter(project=project)}
    assert all(r["pair_id"] in by_pk for r in results)  # the product's pair numbers
    for r in results:  # a pair is right where the votes went with the polite answer
        assert r["right"] == (by_pk[r["pair_id"]].labels.get().choice == "a")
    client = logged_in(lead)
    page = client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    rows = shown_rows(page)
    assert rows and len(rows) == sum(not r["right"] for r in results)
    first = next(r for r in results if not r["right"])
    link = f'href="/projects/{project.pk}/pairs/{first["pair_id"]}/"'
    assert link in rows[0]
    review = client.get(f"/projects/{project.pk}/pairs/{first['pair_id']}/")
    assert (
        review.status_code == 200 and by_pk[first["pair_id"]].response_b in review.content.decode()
    )
    # What the model and the prompt say is shown as text, never as markup.
    wrong_section = page.split('id="wrong-pairs"')[1].split("</section>")[0]
    assert SCRIPT not in page and "<b>" not in wrong_section
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in wrong_section
    assert "&lt;b&gt;" in wrong_section
    # Leads and admins only, as the evaluation page is.
    assert logged_in(annotator).get(f"/evaluations/{evaluation.pk}/").status_code == 404


@pytest.mark.django_db
def test_an_evaluation_from_before_says_its_pairs_were_not_kept(project, lead):
    model = registered(version(project, 1), "rm-1-fruit-v1", figures(0.75, easy=0.8, hard=0.6))
    old = EvaluationRun.objects.create(
        reward_model=model, dataset=model.dataset, status=EvaluationRun.Status.SUCCEEDED,
        done=80, total=80, metrics=figures(0.7, easy=0.8, hard=0.5),
    )  # fmt: skip
    answer = logged_in(lead).get(f"/evaluations/{old.pk}/?difficulty=hard&page=3")
    assert answer.status_code == 200
    section = answer.content.decode().split('id="wrong-pairs"')[1].split("</section>")[0]
    assert "not kept for evaluations made before" in section and "wrong-table" not in section


@pytest.mark.django_db(transaction=True)
def test_the_kept_results_are_what_evaluate_pairs_lists(on_file, tmp_path):
    """The page's pairs and `evaluate --json --pairs` on the same file agree, pair by pair."""
    from io import StringIO

    from django.core.management import call_command

    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in flipped_rows(60)))
    out = StringIO()
    call_command("evaluate", on_file.reward_model.identifier, str(path), "--json", "--pairs",
                 stdout=out)  # fmt: skip
    listed = json.loads(out.getvalue())["pairs"]
    stored = sorted(kept(on_file), key=lambda r: r["index"])
    starts = {"prompt_start", "chosen_start", "rejected_start"}
    for mine, theirs in zip(stored, listed, strict=True):
        assert set(mine) - starts == set(theirs)
        assert (mine["right"], mine["pair_id"], mine["chosen_tokens"]) == (
            theirs["right"],
            theirs["pair_id"],
            theirs["chosen_tokens"],
        )
        assert mine["gap"] == pytest.approx(theirs["gap"], abs=1e-4)
        assert (set(mine) >= starts) == (not mine["right"])  # text only for the mistakes


def api_rows(answer) -> list[dict]:
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def as_listed(result: dict) -> dict:
    """A kept result as the API lists it: everything but `right` (always false there)."""
    return {name: value for name, value in result.items() if name != "right"}


@pytest.mark.django_db(transaction=True)
def test_the_api_lists_the_wrong_pairs_most_confident_first_50_a_page(reward_model, lead, eager):
    evaluation = evaluated(reward_model, upload=upload("pairs.jsonl", flipped_rows(120)))
    wrong = [r for r in kept(evaluation) if not r["right"]]
    assert len(wrong) > 50
    client = client_for(lead)
    first = client.get(f"/api/evaluations/{evaluation.pk}/wrong-pairs/")
    assert first.json()["count"] == len(wrong) and first.json()["previous"] is None
    second = client.get(first.json()["next"])
    assert second.json()["next"] is None
    rows = api_rows(first) + api_rows(second)
    assert len(api_rows(first)) == 50 and len(rows) == len(wrong)
    gaps = [row["gap"] for row in rows]
    assert gaps == sorted(gaps) and gaps[0] == min(r["gap"] for r in kept(evaluation)) < 0
    # Each row as the page has it: the pair, both rewards, the gap, the lengths, the texts.
    assert [{k: v for k, v in row.items() if k != "url"} for row in rows] == [
        as_listed(r) for r in wrong
    ]
    assert rows[0]["pair_id"] == rows[0]["index"] and "Gladly!" in rows[0]["rejected_start"]
    assert all(row["url"] is None for row in rows)  # a file's rows have no review page
    past_the_end = client.get(f"/api/evaluations/{evaluation.pk}/wrong-pairs/?page=3")
    assert past_the_end.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_api_filters_as_the_page_does_and_names_a_bad_filter(on_file, lead, monkeypatch):
    from rest_framework.pagination import PageNumberPagination

    wrong = [r for r in kept(on_file) if not r["right"]]
    client = client_for(lead)
    url = f"/api/evaluations/{on_file.pk}/wrong-pairs/"
    for query, wanted in [
        ("difficulty=hard", [r for r in wrong if r["difficulty"] == "hard"]),
        ("longer=yes", [r for r in wrong if r["chosen_longer"]]),
        ("longer=no", [r for r in wrong if not r["chosen_longer"]]),
        ("difficulty=easy&longer=yes",
         [r for r in wrong if r["difficulty"] == "easy" and r["chosen_longer"]]),
        ("difficulty=unknown", []),  # every row of the file says its difficulty
    ]:  # fmt: skip
        answer = client.get(f"{url}?{query}")
        assert answer.json()["count"] == len(wanted), query
        assert api_rows(answer) == [{**as_listed(r), "url": None} for r in wanted], query
    monkeypatch.setattr(PageNumberPagination, "page_size", 4)  # the next page keeps the filter
    page = client.get(f"{url}?longer=no")
    assert "longer=no" in page.json()["next"] and "page=2" in page.json()["next"]
    second = client.get(page.json()["next"])
    assert [row["index"] for row in api_rows(second)] == [
        r["index"] for r in wrong if not r["chosen_longer"]
    ][4:8]
    # A filter the page would ignore is a 400 here, naming it.
    for query, field in [("difficulty=bogus", "difficulty"), ("longer=maybe", "longer")]:
        answer = client.get(f"{url}?{query}")
        assert answer.status_code == 400 and list(answer.json()) == [field], answer.content
        assert "valid choice" in answer.json()[field][0]


@pytest.mark.django_db(transaction=True)
def test_the_api_links_a_product_pair_to_its_review_page(product_pairs, project, lead, eager):
    model, dataset = product_pairs
    evaluation = evaluated(model, dataset=dataset)
    wrong = [r for r in kept(evaluation) if not r["right"]]
    client = client_for(lead)
    rows = api_rows(client.get(f"/api/evaluations/{evaluation.pk}/wrong-pairs/"))
    assert [row["pair_id"] for row in rows] == [r["pair_id"] for r in wrong] and rows
    for row in rows:
        assert row["url"] == f"http://testserver/projects/{project.pk}/pairs/{row['pair_id']}/"
    assert logged_in(lead).get(rows[0]["url"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_api_shows_the_wrong_pairs_to_whom_the_page_shows_them(
    on_file, lead, annotator, admin_user
):
    url = f"/api/evaluations/{on_file.pk}/wrong-pairs/"
    assert client_for(lead).get(url).status_code == 200
    assert client_for(admin_user).get(url).status_code == 200
    other_lead = MembershipFactory(user__username="ola", role="lead").user
    for refused in (annotator, other_lead):  # the page says 404 to them too
        assert logged_in(refused).get(f"/evaluations/{on_file.pk}/").status_code == 404
        answer = client_for(refused).get(url)
        assert answer.status_code == 404 and "results" not in answer.json()
    assert client_for(None).get(url).status_code in (401, 403)
    missing = client_for(lead).get(f"/api/evaluations/{on_file.pk + 1000}/wrong-pairs/")
    assert missing.status_code == 404


@pytest.mark.django_db
def test_the_api_says_when_an_evaluation_has_no_wrong_pairs_to_list(project, lead, tmp_path):
    model = registered(version(project, 1), "rm-1-fruit-v1", figures(0.75, easy=0.8, hard=0.6))
    client = client_for(lead)

    def answer(**fields):
        evaluation = EvaluationRun.objects.create(
            reward_model=model, dataset=model.dataset, **fields
        )
        return client.get(f"/api/evaluations/{evaluation.pk}/wrong-pairs/?difficulty=hard")

    running = answer(status=EvaluationRun.Status.RUNNING, done=10, total=80)
    assert running.status_code == 409
    assert running.json() == {
        "detail": "This evaluation is running: the pairs the model got wrong are listed once it "
        "has succeeded."
    }
    failed = answer(status=EvaluationRun.Status.FAILED, error="out of memory")
    assert failed.status_code == 409 and "failed" in failed.json()["detail"]
    done = {"status": EvaluationRun.Status.SUCCEEDED, "done": 80, "total": 80,
            "metrics": figures(0.7, easy=0.8, hard=0.5)}  # fmt: skip
    before = answer(**done)  # made before each pair's result was kept
    assert before.status_code == 404
    assert "not kept for evaluations made before" in before.json()["detail"]
    gone = answer(**done, pair_results_file=str(tmp_path / "gone.jsonl"))
    assert gone.status_code == 404 and "no longer there" in gone.json()["detail"]
