"""The judges' API: who may see and change judges and jobs; the key never comes back."""

import json

import pytest

from annotation.judges.services import judge_api_key, judge_ask
from annotation.models import Judge, JudgingJob
from tests.conftest import client_for, logged_in
from tests.factories import PairFactory
from tests.llm_servers import LLMServer

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
        f"/api/judges/{pk}/", {"api_key_env": "JUDGE_API_KEY"}, format="json"
    )
    assert renamed.status_code == 200
    assert renamed.json()["key_source"] == "$JUDGE_API_KEY on the workers"
    assert Judge.objects.get().api_key_encrypted == ""


def test_leads_never_read_a_password_in_a_judges_base_url(admin_user, lead):
    behind_basic_auth = {**JUDGE, "base_url": "http://vllm:pw-Qx81-secret@127.0.0.1:9/v1"}
    made = client_for(admin_user).post("/api/judges/", behind_basic_auth, format="json")
    assert made.json()["base_url"] == behind_basic_auth["base_url"]  # the admin's own
    listed = client_for(lead).get("/api/judges/").json()["results"][0]
    assert listed["base_url"] == "http://vllm:***@127.0.0.1:9/v1"
    page = logged_in(lead).get("/judges/").content.decode()
    assert "pw-Qx81-secret" not in page and "http://vllm:***@127.0.0.1:9/v1" in page


def test_a_judge_may_name_only_a_variable_meant_for_judges(admin_user, settings, monkeypatch):
    """Any other of the workers' variables would go out as the key to the judge's endpoint."""
    client = client_for(admin_user)
    for name in ("DATABASE_URL", "SECRET_KEY", "AWS_SECRET_ACCESS_KEY"):
        refused = client.post("/api/judges/", {**JUDGE, "api_key": "", "api_key_env": name},
                              format="json")  # fmt: skip
        assert refused.status_code == 400, name
        assert "not a judge's key variable" in refused.json()["api_key_env"][0]
    assert not Judge.objects.exists()
    made = client.post("/api/judges/", {**JUDGE, "api_key": "", "api_key_env": "HF_TOKEN"},
                       format="json")  # fmt: skip
    assert made.status_code == 400
    settings.JUDGE_KEY_VARIABLES = {"HF_TOKEN"}
    made = client.post("/api/judges/", {**JUDGE, "api_key": "", "api_key_env": "HF_TOKEN"},
                       format="json")  # fmt: skip
    assert made.status_code == 201
    monkeypatch.setenv("HF_TOKEN", "hf-7")
    assert judge_api_key(Judge.objects.get()) == "hf-7"
    # One named before the rule, or after JUDGE_KEY_VARIABLES lost it: the worker refuses too.
    settings.JUDGE_KEY_VARIABLES = set()
    with pytest.raises(ValueError, match=r"\$HF_TOKEN is not a judge's key variable"):
        judge_api_key(Judge.objects.get())


def test_bad_judges_are_400s_with_messages(admin_user):
    client = client_for(admin_user)
    for bad in ({**JUDGE, "name": "has space"}, {**JUDGE, "base_url": "not a url"},
                {**JUDGE, "concurrency": 0}, {**JUDGE, "api_key_env": "1BAD"}):  # fmt: skip
        answer = client.post("/api/judges/", bad, format="json")
        assert answer.status_code == 400, bad
    assert not Judge.objects.exists()


def test_a_key_the_client_cannot_send_or_a_url_it_cannot_call_is_a_400(admin_user):
    client = client_for(admin_user)
    accented = client.post("/api/judges/", {**JUDGE, "api_key": "sk-clé-7"}, format="json")
    assert accented.status_code == 400
    assert "printable ASCII" in " ".join(accented.json()["api_key"])
    ftp = client.post("/api/judges/", {**JUDGE, "base_url": "ftp://127.0.0.1/v1"}, format="json")
    assert ftp.status_code == 400 and "http:// or https://" in " ".join(ftp.json()["base_url"])
    assert not Judge.objects.exists()
    pk = client.post("/api/judges/", JUDGE, format="json").json()["id"]
    changed = client.patch(f"/api/judges/{pk}/", {"api_key": "sk-\u00e9"}, format="json")
    assert changed.status_code == 400
    assert judge_api_key(Judge.objects.get()) == KEY  # the stored key is untouched


def test_a_judge_repointed_through_the_api_does_not_take_its_key_along(admin_user, eager):
    client = client_for(admin_user)
    pk = client.post("/api/judges/", JUDGE, format="json").json()["id"]
    with LLMServer() as echo:
        echo.judge = lambda text: json.dumps(echo.headers[-1])  # sends the headers back
        moved = client.patch(f"/api/judges/{pk}/", {"base_url": echo.url}, format="json")
        assert moved.status_code == 200 and moved.json()["key_source"] == "none"
        assert "enter the key again" in moved.json()["notice"]
        assert KEY not in moved.content.decode()
        asked = judge_ask(judge=Judge.objects.get(), text="Which is better?")
    assert "Bearer none" in asked["text"] and KEY not in json.dumps(asked)
    with LLMServer() as server:
        both = {"base_url": server.anthropic_url, "provider": "anthropic", "api_key": "sk-ant-2"}
        kept = client.patch(f"/api/judges/{pk}/", both, format="json")
        assert kept.json()["key_source"] == "stored encrypted" and "notice" not in kept.json()
        unchanged = client.patch(f"/api/judges/{pk}/", {"model": "m2"}, format="json")
        assert unchanged.json()["key_source"] == "stored encrypted"
        judge_ask(judge=Judge.objects.get(), text="Which is better?")
    assert "sk-ant-2" in json.dumps(server.headers)


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
