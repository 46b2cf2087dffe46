"""The judges' pages: an admin configures a judge, previews the request on a pair, sends it
once, runs a job (inline here) and follows it; LLM output is shown as text, never as HTML."""

import json

import pytest

from annotation.models import Judge, JudgingJob, Label
from tests.conftest import logged_in
from tests.factories import PairFactory
from tests.llm_servers import LLMServer, fenced_parts, knows_better

KEY = "sk-page-secret-9"
pytestmark = pytest.mark.django_db(transaction=True)  # jobs are queued on commit


@pytest.fixture
def pairs(project):
    return [
        PairFactory(project=project, response_a=f"GOOD {i}", response_b=f"poor {i}")
        for i in range(3)
    ]


def judge_fields(server, **more) -> dict:
    return {
        "name": "page-judge", "provider": "openai", "base_url": server.url, "model": "m",
        "api_key": KEY, "max_tokens": 512, "concurrency": 4, "timeout_seconds": 30, **more,
    }  # fmt: skip


def test_an_admin_configures_previews_asks_runs_and_follows(project, pairs, admin_user, eager):
    client = logged_in(admin_user)
    with LLMServer() as server:
        saved = client.post("/judges/", judge_fields(server))
        assert saved.status_code == 302, saved.content.decode()[:2000]
        listing = client.get("/judges/").content.decode()
        assert "page-judge" in listing and "stored encrypted" in listing and KEY not in listing
        judge = Judge.objects.get()
        edit = client.get(f"/judges/{judge.pk}/").content.decode()
        assert KEY not in edit and judge.api_key_encrypted not in edit

        url = f"/projects/{project.pk}/judging/"
        project.judge_criteria = "Cites a source"  # set on the project's settings page
        project.save()
        settings = {"action": "settings", "judge_template": "", "judge_on_flip": "weak",
                    "pair": pairs[1].pk}  # fmt: skip
        assert client.post(url, settings).status_code == 302
        page = client.get(url, {"pair": pairs[1].pk}).content.decode()
        assert "- Cites a source" in page and "GOOD 1" in page
        answer = client.post(url, {"action": "ask", "judge": judge.pk, "pair": pairs[1].pk})
        assert "Winner A" in answer.content.decode() and len(server.requests) == 1

        job_page = client.post(url, {"action": "run", "judge": judge.pk, "pairs": "all"})
        job = JudgingJob.objects.get()
        assert job_page.status_code == 302 and job_page.url == f"/judging-jobs/{job.pk}/"
        shown = client.get(job_page.url).content.decode()
        assert "3 of 3 pairs labelled, 0 failed" in shown and "page-judge" in shown
        progress = client.get(f"/judging-jobs/{job.pk}/progress.json").json()
        assert progress["finished"] and progress["progress"] == 1.0
    assert Label.objects.filter(source="page-judge").count() == 3


def test_raw_answers_are_shown_as_text(project, pairs, admin_user, eager):
    script = '<script>alert("judged")</script>'

    def hostile(text):
        return script if "GOOD 0" in fenced_parts(text)["response A"] else knows_better(text)

    client = logged_in(admin_user)
    with LLMServer(hostile) as server:
        client.post("/judges/", judge_fields(server))
        judge = Judge.objects.get()
        url = f"/projects/{project.pk}/judging/"
        asked = client.post(url, {"action": "ask", "judge": judge.pk, "pair": pairs[0].pk})
        client.post(url, {"action": "run", "judge": judge.pk, "pairs": "all"})
    assert script not in asked.content.decode() and "&lt;script&gt;" in asked.content.decode()
    job = JudgingJob.objects.get()
    page = logged_in(admin_user).get(f"/judging-jobs/{job.pk}/").content.decode()
    assert job.failed == 1 and script not in page and "&lt;script&gt;alert" in page


def test_who_sees_what(project, pairs, lead, annotator, outsider):
    judge = Judge.objects.create(name="j", model="m")
    job = JudgingJob.objects.create(judge=judge, project=project)
    assert logged_in(lead).get("/judges/").status_code == 200
    assert logged_in(lead).post("/judges/", {"name": "x"}).status_code == 403
    assert logged_in(lead).get(f"/judges/{judge.pk}/").status_code == 404
    assert logged_in(annotator).get("/judges/").status_code == 404
    page = logged_in(lead).get(f"/projects/{project.pk}/judging/")
    assert page.status_code == 200 and 'id="settings-form"' not in page.content.decode()
    refused = logged_in(lead).post(f"/projects/{project.pk}/judging/", {"action": "settings"})
    assert refused.status_code == 403
    for user in (annotator, outsider):
        assert logged_in(user).get(f"/projects/{project.pk}/judging/").status_code == 404
        assert logged_in(user).get(f"/judging-jobs/{job.pk}/").status_code == 404
    cancel = logged_in(lead).post(f"/judging-jobs/{job.pk}/cancel/")
    assert cancel.status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"


def echoes_headers(server: LLMServer):
    """An endpoint that answers with the headers of the request it got, as one that wants a
    judge's key would."""
    server.judge = lambda text: json.dumps(server.headers[-1])
    return server


def test_a_judge_repointed_at_another_endpoint_does_not_take_its_key_along(
    project, pairs, admin_user, eager
):
    client = logged_in(admin_user)
    with LLMServer() as honest:
        assert client.post("/judges/", judge_fields(honest)).status_code == 302
    judge = Judge.objects.get()
    url = f"/projects/{project.pk}/judging/"
    with echoes_headers(LLMServer()) as echo:
        edited = client.post(f"/judges/{judge.pk}/", judge_fields(echo, api_key=""), follow=True)
        shown = edited.content.decode()
        assert "The stored key was removed because the base URL or provider changed" in shown
        judge.refresh_from_db()
        assert judge.key_source == "none" and "stored encrypted" not in shown
        asked = client.post(url, {"action": "ask", "judge": judge.pk, "pair": pairs[0].pk})
    answer = asked.content.decode()
    assert len(echo.headers) == 1 and "Bearer none" in answer  # the echo reached the page
    assert KEY not in answer and KEY not in json.dumps(echo.headers)

    with LLMServer() as moved:  # a key entered with the new base URL goes there
        edited = client.post(f"/judges/{judge.pk}/", judge_fields(moved, api_key="sk-new-1"))
        assert edited.status_code == 302
        client.post(url, {"action": "ask", "judge": judge.pk, "pair": pairs[0].pk})
    assert moved.headers[0]["authorization"] == "Bearer sk-new-1"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_key", "sk-clé-9", "printable ASCII"),
        ("api_key", "sk “quoted”", "printable ASCII"),
        ("base_url", "ftp://127.0.0.1/v1", "http:// or https://"),
    ],
)
def test_a_key_or_base_url_the_clients_cannot_use_is_refused_on_the_form(
    admin_user, field, value, message
):
    with LLMServer() as server:
        refused = logged_in(admin_user).post("/judges/", judge_fields(server, **{field: value}))
    assert refused.status_code == 400 and message in refused.content.decode()
    assert not Judge.objects.exists()


def test_asking_a_judge_that_is_not_one_is_a_400_that_says_so(project, pairs, admin_user):
    Judge.objects.create(name="j", model="m")
    url = f"/projects/{project.pk}/judging/"
    for bad in ("²", "x", "999999", ""):
        asked = logged_in(admin_user).post(url, {"action": "ask", "judge": bad})
        assert asked.status_code == 400, bad
        assert "Choose one of the judges to ask." in asked.content.decode()


def test_the_preview_takes_a_pairs_id_as_the_page_shows_it_and_says_when_there_is_none(
    project, pairs, lead
):
    url = f"/projects/{project.pk}/judging/"
    client = logged_in(lead)
    by_id = client.get(url, {"pair": pairs[2].external_id}).content.decode()
    assert f"Preview on pair <code>{pairs[2].external_id}</code>" in by_id
    assert 'id="pair-not-found"' not in by_id
    by_number = client.get(url, {"pair": str(pairs[1].pk)}).content.decode()
    assert f"Preview on pair <code>{pairs[1].external_id}</code>" in by_number
    missing = client.get(url, {"pair": "demo-04"}).content.decode()
    said = missing.split('id="pair-not-found"')[1].split("</p>")[0]
    assert "No pair <code>demo-04</code>" in said and pairs[0].external_id in said
