"""Input that once answered 500 answers 4xx with a message and changes nothing: digits that
are not ASCII in ids, NUL characters, unpaired surrogates, deep nesting, over-long names."""

import json

import pytest

from annotation.models import CuratedDataset, Pair
from tests.conftest import client_for, logged_in


@pytest.mark.parametrize(
    "url",
    [
        "/api/reward-models/%C2%B2/",
        "/api/labels/mine/?project=%C2%B2",
        "/api/datasets/%00/",
        "/api/projects/{project}/pairs/?source=%00",
        "/api/projects/{project}/pairs/?external_id=%00",
    ],
)
def test_api_reads_refuse_what_is_not_an_id(url, project, lead):
    answer = client_for(lead).get(url.format(project=project.pk))
    assert 400 <= answer.status_code < 500, answer.content


@pytest.mark.parametrize("url", ["/models/%C2%B2/", "/models/compare/?models=%00"])
def test_pages_refuse_what_is_not_an_id(url, lead):
    assert 400 <= logged_in(lead).get(url).status_code < 500


def test_form_fields_with_nul_are_refused_before_any_view(project, lead):
    answer = logged_in(lead).post(
        f"/projects/{project.pk}/pairs/1/", {"note": "ok\x00", "choice": "a"}
    )
    assert answer.status_code == 400 and b"NUL" in answer.content


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        ('{"items": [{"prompt": "a\\u0000", "response": "b"}]}', "NUL"),
        ('{"items": [{"prompt": "\\ud800", "response": "b"}]}', "surrogate"),
    ],
)
def test_json_bodies_that_cannot_be_stored_answer_400(body, problem, project, lead):
    answer = client_for(lead).post(
        f"/api/projects/{project.pk}/datasets/", body, content_type="application/json"
    )
    assert answer.status_code == 400 and problem in answer.json()["detail"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"prompt": "p\\u0000", "chosen": "a", "rejected": "b"}', "NUL"),
        ('{"prompt": "\\udc00", "chosen": "a", "rejected": "b"}', "surrogate"),
        (
            '{"prompt": "p", "chosen": "a", "rejected": "b", "metadata": '
            + "[" * 40
            + "]" * 40
            + "}",
            "nested deeper than 32",
        ),
        ('{"prompt": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    ],
)
def test_imported_rows_that_cannot_be_stored_are_named_and_nothing_lands(
    line, problem, project, tmp_path
):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    good = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})
    path = tmp_path / "pairs.jsonl"
    path.write_text(f"{good}\n{line}\n")
    with pytest.raises(CommandError, match=f"line 2: .*{problem}"):
        call_command("import_pairs", project.name, str(path))
    assert not Pair.objects.exists()


@pytest.mark.parametrize("length", [150, 300])
def test_a_long_dataset_name_is_refused_and_leaves_no_file(length, dataset, settings):
    from pathlib import Path

    from django.core.management import call_command
    from django.core.management.base import CommandError

    before = set(Path(settings.MEDIA_ROOT).rglob("*"))
    with pytest.raises(CommandError, match="100 characters at most"):
        call_command("curate", dataset.project.name, "--name", "a" * length)
    assert CuratedDataset.objects.count() == 1
    assert set(Path(settings.MEDIA_ROOT).rglob("*")) == before


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(project, lead, settings):
    settings.UPLOAD_MAX_MB = 0.001  # about a kilobyte
    answer = client_for(lead).post(
        f"/api/projects/{project.pk}/datasets/", {"name": "x" * 5000}, format="json"
    )
    assert answer.status_code == 413 and b"UPLOAD_MAX_MB" in answer.content


def test_metadata_is_capped_and_checked_like_text(project, tmp_path, settings):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.IMPORT_MAX_METADATA_CHARS = 100
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b",
                                "metadata": {"note": "x" * 200}}) + "\n")  # fmt: skip
    with pytest.raises(CommandError, match="line 1: 'metadata' .* over 100 characters"):
        call_command("import_pairs", project.name, str(path))
    assert not Pair.objects.exists()


def test_the_schema_describes_errors_and_the_names_the_server_takes(lead):
    import yaml

    schema = yaml.safe_load(client_for(lead).get("/api/schema/").content)
    curate = schema["paths"]["/api/projects/{id}/datasets/"]["post"]
    assert {"400", "403", "404", "409"} <= set(curate["responses"])
    name = schema["components"]["schemas"]["CurationRequest"]["properties"]["name"]
    assert name["pattern"] == "^[a-z0-9]+(?:-[a-z0-9]+)*$"
