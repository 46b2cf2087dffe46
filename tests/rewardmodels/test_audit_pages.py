"""Audits as leads and admins use them: launched from the model page and the API (tasks run
inline), followed on their page with each probe's figures and a pair shown before and after
(escaped), held back or passing on the model page, and an admin's override recorded."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rewardmodels.models import Audit, Promotion
from tests.conftest import client_for, logged_in
from tests.factories import passing_audit, separable_rows

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lead_audits_from_the_model_page_and_reads_what_an_edit_does(
    reward_model, dataset, lead, eager
):
    client = logged_in(lead)
    page = client.get(f"/models/{reward_model.identifier}/").content.decode()
    assert "not audited" in page and 'id="audit-form"' in page
    answer = client.post(
        f"/models/{reward_model.identifier}/audit/",
        {"dataset": dataset.identifier, "format": "auto", "probes": ["padding", "sycophancy"]},
    )  # fmt: skip
    audit = Audit.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/audits/{audit.pk}/"
    assert audit.status == "succeeded", audit.error
    html = client.get(f"/audits/{audit.pk}/").content.decode()
    assert "padding" in html and "sycophancy" in html and "Flip rate" in html
    assert (
        "You are absolutely right" in html
        or "You make an excellent point" in html
        or ("onto something" in html)
    )
    download = client.get(f"/audits/{audit.pk}/edited.jsonl")
    rows = [json.loads(line) for line in b"".join(download.streaming_content).splitlines()]
    assert len(rows) == 2 * dataset.n_test
    page = client.get(f"/models/{reward_model.identifier}/").content.decode()
    assert f'href="/audits/{audit.pk}/"' in page and 'id="audit-verdict"' in page


def test_edited_text_is_shown_escaped(reward_model, lead, eager):
    rows = separable_rows(6)
    for row in rows:
        row["rejected"] = "No. <script>alert(1)</script> plum"
    upload = SimpleUploadedFile("pairs.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    client = logged_in(lead)
    client.post(f"/models/{reward_model.identifier}/audit/",
                {"pairs": upload, "format": "auto", "probes": ["formatting"]})  # fmt: skip
    audit = Audit.objects.get()
    html = client.get(f"/audits/{audit.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html


def test_a_bad_audit_request_answers_400_and_queues_nothing(reward_model, lead, tmp_path):
    client = logged_in(lead)
    bad = client.post(f"/models/{reward_model.identifier}/audit/",
                      {"format": "auto", "probes": ["padding", "glitter"]})  # fmt: skip
    assert bad.status_code == 400
    empty = SimpleUploadedFile("empty.jsonl", b"")
    bad = client.post(f"/models/{reward_model.identifier}/audit/",
                      {"pairs": empty, "format": "auto", "probes": ["padding"]})  # fmt: skip
    assert bad.status_code == 400
    api = client_for(lead).post(
        f"/api/reward-models/{reward_model.pk}/audit",
        {"probes": ["glitter"], "dataset": "fruit@v1"},
        format="json",
    )
    assert api.status_code == 400 and "Unknown probe glitter" in str(api.json())
    none = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/audit",
                                 {"dataset": "apples@v1"}, format="json")  # fmt: skip
    assert none.status_code == 404
    assert not Audit.objects.exists()


def test_the_api_queues_and_lists_audits(reward_model, dataset, lead, annotator, eager):
    made = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/audit",
                                 {"dataset": dataset.identifier, "probes": ["echo"]},
                                 format="json")  # fmt: skip
    assert made.status_code == 201, made.json()
    listed = client_for(lead).get(f"/api/reward-models/{reward_model.pk}/audit").json()
    (audit,) = listed
    assert audit["status"] == "succeeded" and audit["probes"] == ["echo"]
    (probe,) = audit["results"]["probes"]
    assert {"name", "n", "mean_change", "mean_change_ci95", "flip_rate",
            "change_in_gaps"} <= set(probe)  # fmt: skip
    assert isinstance(audit["held_back"], list)
    hidden = client_for(annotator).get(f"/api/reward-models/{reward_model.pk}/audit")
    assert hidden.status_code == 404


def test_an_admin_overrides_a_held_back_audit_on_the_page(reward_model, dataset, admin_user):
    audit = passing_audit(reward_model, dataset)
    audit.results["probes"][0].update(flip_rate=0.4, flipped=4, n_right=10)
    Audit.objects.filter(pk=audit.pk).update(results=audit.results)
    client = logged_in(admin_user)
    page = client.get(f"/models/{reward_model.identifier}/").content.decode()
    assert "held back" in page and 'name="override"' in page
    url = f"/models/{reward_model.identifier}/promotion/"
    refused = client.post(url, {"reason": "ship it"}, follow=True).content.decode()
    assert "padding probe flips 40.0%" in refused and not Promotion.objects.exists()
    client.post(url, {"reason": "padding is harmless for this policy", "override": "1"})
    decision = Promotion.objects.get()
    assert decision.overridden and decision.audit_id == audit.pk
    page = client.get(f"/models/{reward_model.identifier}/").content.decode()
    assert "over its audit" in page


def test_the_compare_page_sets_the_models_audits_side_by_side(reward_model, dataset, lead):
    audit = passing_audit(reward_model, dataset)
    page = logged_in(lead).get(f"/models/compare/?m={reward_model.identifier}").content.decode()
    assert f'href="/audits/{audit.pk}/"' in page
    for probe in ("padding", "formatting", "sycophancy", "confidence", "echo"):
        assert f"Flip rate, {probe}" in page
