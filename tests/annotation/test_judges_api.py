"""The judges' API: who may see and change judges and jobs; the key never comes back."""

from annotation.models import Judge, JudgingJob
from tests.conftest import client_for
from tests.factories import PairFactory

KEY = "sk-api-secret-7"
JUDGE = {"name": "j-api", "provider": "openai", "base_url": "http://127.0.0.1:9/v1",
         "model": "m", "api_key": KEY, "concurrency": 4}  # fmt: skip


def test_admins_configure_judges_leads_look_annotators_do_not(admin_user, lead, annotator):
    made = client_for(admin_user).post("/api/judges/", JUDGE, format="json")
    assert made.status_code == 201, made.content
    assert KEY not in made.content.decode() and made.json()["key_source"] == "stored encrypted"
    assert KEY not in Judge.objects.get().api_key_encrypted
    listed = client_for(lead).get("/api/judges/")
    assert listed.status_code == 200 and KEY not in listed.content.decode()
    assert listed.json()["results"][0]["name"] == "j-api"
    pk = made.json()["id"]
    refused = client_for(lead).patch(f"/api/judges/{pk}/", {"model": "x"}, format="json")
    assert refused.status_code == 403
    assert client_for(annotator).get("/api/judges/").status_code == 403
    renamed = client_for(admin_user).patch(
        f"/api/judges/{pk}/", {"api_key_env": "JUDGE_KEY"}, format="json"
    )
    assert (
        renamed.status_code == 200 and renamed.json()["key_source"] == "$JUDGE_KEY on the workers"
    )
    assert Judge.objects.get().api_key_encrypted == ""


def test_bad_judges_are_400s_with_messages(admin_user):
    client = client_for(admin_user)
    for bad in ({**JUDGE, "name": "has space"}, {**JUDGE, "base_url": "not a url"},
                {**JUDGE, "concurrency": 0}, {**JUDGE, "api_key_env": "1BAD"}):  # fmt: skip
        answer = client.post("/api/judges/", bad, format="json")
        assert answer.status_code == 400, bad
    assert not Judge.objects.exists()


def test_leads_queue_follow_and_cancel_jobs_in_their_project(
    project, lead, annotator, outsider, django_capture_on_commit_callbacks
):
    PairFactory(project=project)
    Judge.objects.create(name="j-api", model="m")
    url = f"/api/projects/{project.pk}/judging-jobs/"
    with django_capture_on_commit_callbacks() as queued:
        made = client_for(lead).post(url, {"judge": "j-api", "pairs": "all"}, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["total"] == 1 and len(queued) == 1
    job = made.json()["id"]
    assert client_for(annotator).post(url, {"judge": "j-api"}, format="json").status_code == 403
    assert client_for(outsider).get(f"/api/judging-jobs/{job}/").status_code == 404
    sample = client_for(lead).post(url, {"judge": "j-api", "pairs": "sample"}, format="json")
    assert sample.status_code == 400 and "limit" in sample.json()
    unknown = client_for(lead).post(url, {"judge": "nobody"}, format="json")
    assert unknown.status_code == 400 and "judge" in unknown.json()
    cancelled = client_for(lead).post(f"/api/judging-jobs/{job}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert JudgingJob.objects.get(pk=job).cancel_requested
