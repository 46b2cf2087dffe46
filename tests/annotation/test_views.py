import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotation.labelling.services import assignment_next, label_submit
from annotation.models import Pair
from tests.conftest import logged_in
from tests.factories import PairFactory


@pytest.mark.parametrize("url", ["/", "/labels/", "/projects/1/", "/projects/1/annotate/"])
def test_pages_ask_anonymous_to_log_in(db, url):
    response = Client().get(url)
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_home_lists_the_annotators_projects(project, annotator, outsider):
    page = logged_in(annotator).get("/").content.decode()
    assert project.name in page and "Start labelling" in page
    assert outsider.memberships.get().project.name not in page
    assert "Pairs &amp; import" not in page


def test_annotator_cannot_open_pairs_page_or_other_projects(project, annotator, outsider):
    client = logged_in(annotator)
    assert client.get(f"/projects/{project.pk}/").status_code == 404
    other = outsider.memberships.get().project
    missing = client.get(f"/projects/{other.pk}/annotate/")
    assert missing.status_code == 404
    # The site's own page, with the way back, not the framework's.
    assert "Not found" in missing.content.decode() and 'href="/"' in missing.content.decode()


def test_annotator_cannot_open_django_admin(annotator):
    response = logged_in(annotator).get("/admin/annotation/label/")
    assert response.status_code == 302 and "/admin/login/" in response.url


def test_annotate_page_shows_the_keys(project, annotator):
    page = logged_in(annotator).get(f"/projects/{project.pk}/annotate/").content.decode()
    for key in ("←", "→", "↓", "Enter", "<kbd>S</kbd>", "<kbd>R</kbd>", "<kbd>0</kbd>"):
        assert key in page


def test_guidelines_are_rendered_inert(project, annotator):
    project.guidelines = "Be **kind**. <script>alert(1)</script>"
    project.save()
    page = logged_in(annotator).get(f"/projects/{project.pk}/annotate/").content.decode()
    assert "<strong>kind</strong>" in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


def test_lead_uploads_pairs_and_sees_them(project, lead):
    client = logged_in(lead)
    rows = [{"id": "u1", "prompt": "q", "response_a": "x", "response_b": "y"}]
    upload = SimpleUploadedFile("p.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    response = client.post(
        f"/projects/{project.pk}/", {"file": upload, "format": "auto"}, follow=True
    )
    page = response.content.decode()
    assert "Import done: imported 1, skipped 0." in page
    assert "u1" in page
    assert Pair.objects.filter(project=project).count() == 1


def test_lead_upload_of_bad_file_lists_the_bad_rows(project, lead):
    upload = SimpleUploadedFile("p.jsonl", b'{"prompt": "q"}\n')
    response = logged_in(lead).post(f"/projects/{project.pk}/", {"file": upload}, follow=True)
    page = response.content.decode()
    assert "nothing was imported" in page
    assert "line 1: missing field" in page
    assert not Pair.objects.exists()


def test_my_labels_page(project, annotator):
    PairFactory.create_batch(2, project=project)
    client = logged_in(annotator)
    assert "No labels yet" in client.get("/labels/").content.decode()
    for screen in ("right", "tie"):
        assignment = assignment_next(project=project, annotator=annotator)
        label_submit(
            assignment_id=assignment.pk, annotator=annotator, screen_choice=screen, strength=2
        )
    page = client.get("/labels/").content.decode()
    # In the terms the annotator answered in, never the stored A and B.
    assert "Right better" in page and "Tie" in page
    assert "Response A" not in page and "Response B" not in page


def test_lead_upload_with_a_line_over_the_limit_says_which_and_imports_nothing(
    project, lead, settings
):
    settings.IMPORT_MAX_LINE_MB = 0.01
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    rows = [{"id": "ok", "prompt": "q", "response_a": "x", "response_b": "y"}]
    rows.append({"id": "long", "prompt": "q", "response_a": "x" * 20_000, "response_b": "y"})
    upload = SimpleUploadedFile("p.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    response = logged_in(lead).post(f"/projects/{project.pk}/", {"file": upload}, follow=True)
    assert response.status_code == 200
    assert "Nothing was imported: line 2 is longer than 0.01 MB" in response.content.decode()
    assert not Pair.objects.exists()


def test_the_criteria_show_beside_the_pair_and_the_guidelines_wait_in_their_panel(
    project, annotator
):
    project.guidelines = "Prefer the **honest** answer."
    project.criteria = "Helpful\nHarmless"
    project.save()
    page = logged_in(annotator).get(f"/projects/{project.pk}/annotate/").content.decode()
    criteria = page.index('id="criteria"')
    assert criteria < page.index('id="pair"')
    assert "<span>Helpful</span> · <span>Harmless</span>" in page[criteria:]
    assert 'id="guidelines-open"' in page and "<kbd>G</kbd>" in page
    panel = page.index('id="guidelines"')
    assert "hidden>" in page[panel : panel + 120] and "<strong>honest</strong>" in page[panel:]


def test_the_pager_keeps_the_rest_of_the_query(project, annotator):
    PairFactory.create_batch(51, project=project)
    for _ in range(51):
        assignment = assignment_next(project=project, annotator=annotator)
        label_submit(
            assignment_id=assignment.pk, annotator=annotator, screen_choice="left", strength=1
        )
    client = logged_in(annotator)
    first = client.get("/labels/?sort=new").content.decode()
    assert 'href="?sort=new&amp;page=2" rel="next"' in first
    second = client.get("/labels/?sort=new&page=2").content.decode()
    assert 'href="?sort=new&amp;page=1" rel="prev"' in second and "Page 2 of 2" in second
