import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.labelling.services import assignment_next, label_submit
from annotation.models import Assignment, CuratedDataset, Label, Pair
from tests.conftest import client_for
from tests.factories import PairFactory, ProjectFactory, api_token


def jsonl(*rows) -> SimpleUploadedFile:
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return SimpleUploadedFile("pairs.jsonl", body, content_type="application/jsonl")


@pytest.fixture
def pairs(project):
    return PairFactory.create_batch(3, project=project)


def project_urls(project) -> list[tuple[str, str]]:
    base = f"/api/projects/{project.pk}"
    return [
        ("get", f"{base}/"),
        ("get", f"{base}/pairs/"),
        ("post", f"{base}/import/"),
        ("post", f"{base}/next/"),
        ("get", f"{base}/progress/"),
    ]


class TestAnonymous:
    def test_every_endpoint_refuses(self, project, pairs, annotator):
        assignment = assignment_next(project=project, annotator=annotator)
        urls = project_urls(project) + [
            ("get", "/api/projects/"),
            ("post", f"/api/assignments/{assignment.pk}/label/"),
            ("post", f"/api/assignments/{assignment.pk}/skip/"),
            ("get", "/api/labels/mine/"),
        ]
        for method, url in urls:
            response = getattr(APIClient(), method)(url)
            assert response.status_code in (401, 403), url


class TestAnnotator:
    def test_sees_only_own_projects(self, project, annotator, outsider):
        other = outsider.memberships.get().project
        names = [p["name"] for p in client_for(annotator).get("/api/projects/").json()["results"]]
        assert names == [project.name]
        assert client_for(annotator).get(f"/api/projects/{other.pk}/").status_code == 404
        assert client_for(annotator).post(f"/api/projects/{other.pk}/next/").status_code == 404

    def test_cannot_browse_pairs_or_import(self, project, annotator):
        client = client_for(annotator)
        assert client.get(f"/api/projects/{project.pk}/pairs/").status_code == 403
        response = client.post(f"/api/projects/{project.pk}/import/", {"file": jsonl()})
        assert response.status_code == 403

    def test_queue_round_trip(self, project, pairs, annotator):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        assert set(shown) >= {"id", "prompt", "left_html", "right_html"}
        assert "response_a" not in shown and "left" not in shown  # no hint of stored order
        response = client.post(
            f"/api/assignments/{shown['id']}/label/",
            {"choice": "left", "strength": 1, "rationale": "shorter", "duration_ms": 4200},
            format="json",
        )
        assert response.status_code == 201, response.json()
        label = Label.objects.get()
        assert label.duration_ms == 4200 and label.choice == label.shown_left
        progress = client.get(f"/api/projects/{project.pk}/progress/").json()
        assert progress == {"labelled_today": 1, "labelled_total": 1, "remaining": 2}
        mine = client.get("/api/labels/mine/").json()["results"]
        assert [m["rationale"] for m in mine] == ["shorter"]

    def test_label_answer_can_carry_the_next_pair(self, project, pairs, annotator):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        seen = [shown["id"]]
        while True:
            body = {"choice": "tie", "next": True}
            response = client.post(f"/api/assignments/{seen[-1]}/label/", body, format="json")
            assert response.status_code == 201, response.json()
            following = response.json()["next"]
            if following is None:
                break
            assert set(following) >= {"id", "prompt", "left_html", "right_html"}
            seen.append(following["id"])
        assert len(set(seen)) == len(pairs) == Label.objects.filter(annotator=annotator).count()
        assert client.post(f"/api/projects/{project.pk}/next/").status_code == 204

    def test_label_answer_without_next_hands_nothing_out(self, project, pairs, annotator):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        response = client.post(
            f"/api/assignments/{shown['id']}/label/", {"choice": "tie"}, format="json"
        )
        assert response.status_code == 201 and "next" not in response.json()
        assert Assignment.objects.filter(annotator=annotator).count() == 1

    def test_changing_the_last_answer(self, project, pairs, annotator, other_annotator):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        url = f"/api/assignments/{shown['id']}/label/"
        assert client.post(url, {"choice": "left", "strength": 1}, format="json").status_code == 201
        changed = client.put(
            url, {"choice": "right", "strength": 3, "rationale": "no"}, format="json"
        )
        assert changed.status_code == 200, changed.json()
        label = Label.objects.get(annotator=annotator)
        assert (label.choice != label.shown_left, label.strength, label.rationale) == (
            True,
            3,
            "no",
        )
        assert label.pair.consensus.votes_a + label.pair.consensus.votes_b == 1
        # Not someone else's; not one never answered; not past its time; not once curated.
        assert (
            client_for(other_annotator).put(url, {"choice": "tie"}, format="json").status_code
            == 404
        )
        live = client.post(f"/api/projects/{project.pk}/next/").json()
        unanswered = client.put(
            f"/api/assignments/{live['id']}/label/", {"choice": "tie"}, format="json"
        )
        assert unanswered.status_code == 409
        Assignment.objects.filter(pk=shown["id"]).update(expires_at=timezone.now())
        late = client.put(url, {"choice": "tie"}, format="json")
        assert late.status_code == 409 and "too late" in late.json()["detail"].lower()
        Assignment.objects.filter(pk=shown["id"]).update(
            expires_at=timezone.now() + timedelta(hours=1)
        )
        CuratedDataset.objects.create(
            project=project, name="cut", version=1, identifier="cut@v1", sha256="0" * 64,
            snapshot="cut.jsonl", n_rows=1, n_train=1, n_test=0,
        )  # fmt: skip
        curated = client.put(url, {"choice": "tie"}, format="json")
        assert curated.status_code == 409 and "curated" in curated.json()["detail"]
        assert Label.objects.get(annotator=annotator).strength == 3

    def test_empty_queue_is_204(self, project, annotator):
        assert client_for(annotator).post(f"/api/projects/{project.pk}/next/").status_code == 204

    def test_cannot_answer_or_skip_someone_elses_assignment(
        self, project, pairs, annotator, other_annotator
    ):
        theirs = assignment_next(project=project, annotator=other_annotator)
        client = client_for(annotator)
        label = client.post(
            f"/api/assignments/{theirs.pk}/label/", {"choice": "left", "strength": 1}, format="json"
        )
        assert label.status_code == 404
        assert client.post(f"/api/assignments/{theirs.pk}/skip/").status_code == 404
        assert not Label.objects.exists()

    def test_never_sees_other_annotators_labels(self, project, pairs, annotator, other_annotator):
        theirs = assignment_next(project=project, annotator=other_annotator)
        label_submit(
            assignment_id=theirs.pk, annotator=other_annotator, screen_choice="left", strength=2
        )
        client = client_for(annotator)
        assert client.get("/api/labels/mine/").json()["results"] == []
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        assert "labels" not in json.dumps(shown)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"choice": "up"}, "choice"),
            ({"choice": "left", "strength": 7}, "strength"),
            ({"choice": "left"}, "strength"),
            ({"choice": "left", "strength": 1, "duration_ms": -5}, "duration_ms"),
            ({}, "choice"),
        ],
    )
    def test_bad_answers_are_400_with_a_message(self, project, pairs, annotator, body, field):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        response = client.post(f"/api/assignments/{shown['id']}/label/", body, format="json")
        assert response.status_code == 400
        assert field in response.json()
        assert not Label.objects.exists()

    def test_the_same_label_sent_twice_is_answered_as_stored_once(self, project, pairs, annotator):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        url = f"/api/assignments/{shown['id']}/label/"
        body = {"choice": "tie", "next": True}
        first = client.post(url, body, format="json")
        again = client.post(url, body, format="json")
        assert first.status_code == again.status_code == 201
        assert again.json()["choice"] == "tie"
        assert again.json()["next"]["id"] == first.json()["next"]["id"]
        assert Label.objects.count() == 1

    def test_answering_twice_differently_is_409(self, project, pairs, annotator):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        url = f"/api/assignments/{shown['id']}/label/"
        assert client.post(url, {"choice": "tie"}, format="json").status_code == 201
        response = client.post(url, {"choice": "left", "strength": 1}, format="json")
        assert response.status_code == 409
        assert "already labelled this pair" in response.json()["detail"]
        assert Label.objects.get().choice == "tie"

    def test_malformed_json_is_400(self, project, pairs, annotator):
        client = client_for(annotator)
        shown = client.post(f"/api/projects/{project.pk}/next/").json()
        response = client.post(
            f"/api/assignments/{shown['id']}/label/", "{nope", content_type="application/json"
        )
        assert response.status_code == 400

    def test_own_labels_filter_rejects_junk(self, annotator):
        assert client_for(annotator).get("/api/labels/mine/?project=abc").status_code == 404


class TestLead:
    def test_lists_and_filters_pairs(self, project, pairs, lead):
        client = client_for(lead)
        body = client.get(f"/api/projects/{project.pk}/pairs/").json()
        assert body["count"] == 3 and body["results"][0]["n_labels"] == 0
        one = client.get(f"/api/projects/{project.pk}/pairs/?external_id={pairs[1].external_id}")
        assert [p["id"] for p in one.json()["results"]] == [pairs[1].pk]
        assert client.get(f"/api/projects/{project.pk}/pairs/?labelled=true").json()["count"] == 0

    def test_cannot_see_another_projects_pairs(self, lead):
        other = ProjectFactory()
        PairFactory(project=other)
        assert client_for(lead).get(f"/api/projects/{other.pk}/pairs/").status_code == 404

    def test_import_endpoint(self, project, lead):
        client = client_for(lead)
        rows = [{"prompt": "q", "chosen": "good", "rejected": "bad"}]
        response = client.post(f"/api/projects/{project.pk}/import/", {"file": jsonl(*rows)})
        assert response.status_code == 201
        assert response.json()["summary"] == "imported 1, skipped 0"
        bad = client.post(f"/api/projects/{project.pk}/import/", {"file": jsonl({"prompt": "q"})})
        assert bad.status_code == 400
        assert bad.json()["errors"] == ["line 1: missing field 'response_a', 'response_b'"]
        missing = client.post(f"/api/projects/{project.pk}/import/", {})
        assert missing.status_code == 400 and "file" in missing.json()
        assert Pair.objects.count() == 1


class TestAdmin:
    def test_sees_every_project(self, project, admin_user, outsider):
        names = {p["name"] for p in client_for(admin_user).get("/api/projects/").json()["results"]}
        assert names == {project.name, outsider.memberships.get().project.name}


def test_token_auth_for_scripts(project, annotator, pairs):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token(annotator)}")
    assert client.post(f"/api/projects/{project.pk}/next/").status_code == 200


def test_openapi_schema_and_docs(admin_user):
    client = client_for(admin_user)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/projects/{id}/next/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_import_of_a_line_over_the_line_limit_is_a_400_naming_it(project, lead, settings):
    settings.IMPORT_MAX_LINE_MB = 0.01
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # on disk, as a large upload is
    rows = [{"id": "ok", "prompt": "q", "response_a": "x", "response_b": "y"}]
    rows.append({"id": "long", "prompt": "q", "response_a": "x" * 20_000, "response_b": "y"})
    response = client_for(lead).post(f"/api/projects/{project.pk}/import/", {"file": jsonl(*rows)})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("line 2 is longer than 0.01 MB")
    assert not Pair.objects.exists()
