import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Label, Pair, Project

HH_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hh-rlhf-harmless-dev.jsonl"

UNLABELLED = [
    {"id": "p1", "prompt": "Capital of France?", "response_a": "Paris", "response_b": "Lyon"},
    {
        "id": "p2",
        "prompt": [{"role": "user", "content": "Hi"}],
        "response_a": "",
        "response_b": "Hey",
    },
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def import_pairs(path: Path, *args: str, project: str = "Demo") -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_pairs", project, str(path), *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def nothing_written() -> bool:
    return not Pair.objects.exists() and not Label.objects.exists()


@pytest.mark.django_db
class TestFormats:
    def test_jsonl_unlabelled_rows_keep_their_order_and_create_the_project(self, tmp_path):
        summary = import_pairs(write_jsonl(tmp_path / "pairs.jsonl", UNLABELLED))
        assert summary == "imported 2, skipped 0"
        project = Project.objects.get(name="Demo")
        assert project.annotators_per_pair == 3
        p1 = Pair.objects.get(external_id="p1")
        assert (p1.response_a, p1.response_b, p1.prompt) == ("Paris", "Lyon", "Capital of France?")
        p2 = Pair.objects.get(external_id="p2")
        assert p2.prompt == [{"role": "user", "content": "Hi"}] and p2.response_a == ""
        assert not Label.objects.exists()

    def test_csv(self, tmp_path):
        path = tmp_path / "pairs.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "prompt", "response_a", "response_b"])
            writer.writeheader()
            writer.writerow(
                {"id": "c1", "prompt": "Two\nlines", "response_a": "x", "response_b": "y"}
            )
        assert import_pairs(path) == "imported 1, skipped 0"
        assert Pair.objects.get(external_id="c1").prompt == "Two\nlines"

    def test_parquet(self, tmp_path):
        path = tmp_path / "pairs.parquet"
        pq.write_table(
            pa.Table.from_pylist(
                [{"prompt": "q", "chosen": "good", "rejected": "bad"}] * 1
                + [{"prompt": "q2", "chosen": "fine", "rejected": "worse"}]
            ),
            path,
        )
        assert import_pairs(path, "--source", "vendor") == "imported 2, skipped 0"
        labels = Label.objects.select_related("pair")
        assert [lb.source for lb in labels] == ["vendor", "vendor"]
        for label in labels:
            preferred = label.pair.response_a if label.choice == "a" else label.pair.response_b
            assert preferred in ("good", "fine")

    def test_hh_rows(self, tmp_path):
        rows = [
            {
                "chosen": "\n\nHuman: Q?\n\nAssistant: Kind answer.",
                "rejected": "\n\nHuman: Q?\n\nAssistant: Rude answer.",
            }
        ]
        assert import_pairs(write_jsonl(tmp_path / "hh.jsonl", rows), "--format", "hh") == (
            "imported 1, skipped 0"
        )
        pair = Pair.objects.get()
        label = pair.labels.get()
        assert label.source == "imported"
        assert pair.response(label.choice) == "Kind answer."
        assert pair.prompt == [{"role": "user", "content": "Q?"}]

    def test_reimport_adds_nothing(self, tmp_path):
        path = write_jsonl(
            tmp_path / "pairs.jsonl", UNLABELLED + [{"prompt": "n", "chosen": "1", "rejected": "2"}]
        )
        assert import_pairs(path) == "imported 3, skipped 0"
        assert import_pairs(path) == "imported 0, skipped 3"
        assert Pair.objects.count() == 3 and Label.objects.count() == 1

    def test_rows_without_id_are_deduplicated_by_content(self, tmp_path):
        row = {"prompt": "q", "response_a": "x", "response_b": "y"}
        swapped = {"prompt": "q", "response_a": "y", "response_b": "x"}
        assert (
            import_pairs(write_jsonl(tmp_path / "a.jsonl", [row, swapped]))
            == "imported 1, skipped 1"
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            ['{"prompt": "q", "response_a": "x", "response_b": "y"}', '{"prompt": '],
            "line 3: malformed JSON",
        ),
        (['{"prompt": "q", "response_a": "x"}'], "line 2: missing field 'response_b'"),
        (
            ['{"prompt": "q", "response_a": "x", "response_b": "x"}'],
            "line 2: the two responses are identical",
        ),
        (["[1, 2]"], "line 2: expected a JSON object"),
    ],
)
def test_bad_rows_write_nothing_and_are_named(tmp_path, lines, problem):
    good = [json.dumps({"id": "ok", "prompt": "fine", "response_a": "1", "response_b": "2"})]
    path = write_jsonl(tmp_path / "bad.jsonl", good + lines)
    with pytest.raises(CommandError) as error:
        import_pairs(path)
    assert problem in str(error.value)
    assert "nothing imported" in str(error.value)
    assert nothing_written()


@pytest.mark.django_db
def test_every_bad_line_is_reported(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", ["{", '{"prompt": 1}', UNLABELLED[0]])
    with pytest.raises(CommandError) as error:
        import_pairs(path)
    assert "line 1: malformed JSON" in str(error.value)
    assert "line 2:" in str(error.value)
    assert nothing_written()


@pytest.mark.django_db
def test_field_over_limit_writes_nothing(tmp_path, settings):
    settings.IMPORT_MAX_FIELD_CHARS = 50
    path = write_jsonl(
        tmp_path / "big.jsonl",
        [UNLABELLED[0], {"prompt": "q", "response_a": "x" * 51, "response_b": "y"}],
    )
    with pytest.raises(CommandError, match="line 2: response has 51 characters; the limit is 50"):
        import_pairs(path)
    assert nothing_written()


@pytest.mark.django_db
def test_undecodable_bytes_write_nothing(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps(UNLABELLED[0]).encode()
        + b'\n{"prompt": "caf\xe9", "response_a": "x", "response_b": "y"}\n'
    )
    with pytest.raises(CommandError, match="line 2: bytes that are not UTF-8"):
        import_pairs(path)
    assert nothing_written()


@pytest.mark.django_db
def test_undecodable_csv_writes_nothing(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"prompt,response_a,response_b\nq,x,y\nq2,caf\xe9,z\n")
    with pytest.raises(CommandError, match="line 3: bytes that are not UTF-8"):
        import_pairs(path)
    assert nothing_written()


@pytest.mark.django_db
def test_unknown_format_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "pairs.txt", UNLABELLED)
    with pytest.raises(CommandError, match="cannot tell the format"):
        import_pairs(path)
    with pytest.raises(CommandError, match="invalid choice"):
        import_pairs(path, "--format", "xml")
    assert nothing_written()


@pytest.mark.django_db
def test_not_parquet_writes_nothing(tmp_path):
    path = tmp_path / "pairs.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(CommandError, match="not a readable Parquet file"):
        import_pairs(path)
    assert nothing_written()


@pytest.mark.django_db
def test_skip_invalid_imports_the_good_rows_and_reports_the_bad(tmp_path):
    from io import StringIO

    path = write_jsonl(tmp_path / "mixed.jsonl", [UNLABELLED[0], "{oops", UNLABELLED[1]])
    out, err = StringIO(), StringIO()
    call_command("import_pairs", "Demo", str(path), "--skip-invalid", stdout=out, stderr=err)
    assert out.getvalue().strip() == "imported 2, skipped 0, invalid 1"
    assert "line 2: malformed JSON" in err.getvalue()
    assert Pair.objects.count() == 2


@pytest.mark.django_db
def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        import_pairs(tmp_path / "nope.jsonl")
    assert not Project.objects.exists() or nothing_written()


@pytest.mark.django_db
class TestLabels:
    @pytest.fixture
    def pairs(self, tmp_path):
        import_pairs(write_jsonl(tmp_path / "pairs.jsonl", UNLABELLED))

    def test_import_and_export_round_trip(self, pairs, tmp_path):
        from io import StringIO

        rows = [
            {
                "pair": "p1",
                "annotator": "vendor-1",
                "choice": "a",
                "strength": 2,
                "rationale": "right",
            },
            {"pair": "p1", "annotator": "vendor-2", "choice": "tie"},
            {"pair": "p2", "annotator": "vendor-1", "choice": "b", "strength": None},
        ]
        path = write_jsonl(tmp_path / "labels.jsonl", rows)
        out = StringIO()
        call_command("import_labels", "Demo", str(path), stdout=out)
        assert out.getvalue().strip() == "imported 3, skipped 0"
        out = StringIO()
        call_command("import_labels", "Demo", str(path), stdout=out)
        assert out.getvalue().strip() == "imported 0, skipped 3"

        export = tmp_path / "out.jsonl"
        call_command("export_labels", "Demo", "--out", str(export), stderr=StringIO())
        exported = [json.loads(line) for line in export.read_text().splitlines()]
        assert [(r["pair"], r["annotator"], r["choice"], r["strength"]) for r in exported] == [
            ("p1", "vendor-1", "a", 2),
            ("p1", "vendor-2", "tie", None),
            ("p2", "vendor-1", "b", None),
        ]
        assert set(exported[0]) >= {"shown_left", "duration_ms", "rationale"}
        with pytest.raises(CommandError, match="--force"):
            call_command("export_labels", "Demo", "--out", str(export))

    @pytest.mark.parametrize(
        ("row", "problem"),
        [
            ({"pair": "nope", "annotator": "v", "choice": "a"}, "no pair with id 'nope'"),
            ({"pair": "p1", "annotator": "v", "choice": "A+"}, "'choice' must be a, b or tie"),
            ({"pair": "p1", "annotator": "v", "choice": "a", "strength": 9}, "'strength'"),
            ({"pair": "p1", "annotator": "v", "choice": "a", "shown_left": "left"},
             "'shown_left' must be a, b or empty, not 'left'"),
            ({"pair": "p1", "annotator": "v", "choice": "a", "duration_ms": -5},
             "'duration_ms' must be a whole number of milliseconds, 0 or more, not -5"),
            ({"pair": "p1", "annotator": "v", "choice": "a", "duration_ms": 1.5},
             "'duration_ms' must be a whole number"),
            ({"pair": "p1", "annotator": "v", "choice": "a", "duration_ms": "soon"},
             "'duration_ms' must be a whole number"),
        ],
    )  # fmt: skip
    def test_bad_label_rows_write_nothing(self, pairs, tmp_path, row, problem):
        good = {"pair": "p2", "annotator": "v", "choice": "b"}
        path = write_jsonl(tmp_path / "labels.jsonl", [good, row])
        with pytest.raises(CommandError, match=f"line 2: {problem}"):
            call_command("import_labels", "Demo", str(path))
        assert not Label.objects.exists()

    def test_bad_shown_left_in_a_csv_names_its_line_and_writes_nothing(self, pairs, tmp_path):
        path = tmp_path / "labels.csv"
        path.write_text(
            "pair,annotator,choice,shown_left,duration_ms\np1,v,a,b,1200\np2,v,b,right,900\n"
        )
        with pytest.raises(CommandError, match="line 3: 'shown_left' must be a, b or empty"):
            call_command("import_labels", "Demo", str(path))
        assert not Label.objects.exists()

    def test_the_help_says_shown_left_and_duration_are_kept(self):
        from annotation.management.commands.import_labels import Command

        assert "shown_left" in Command.help and "duration_ms" in Command.help
        assert "kept" in Command.help

    def test_unknown_project(self, tmp_path):
        with pytest.raises(CommandError, match="No project named or numbered 'Ghost'"):
            call_command("import_labels", "Ghost", str(tmp_path / "x.jsonl"))


@pytest.mark.django_db
@pytest.mark.skipif(not HH_DATA.exists(), reason="shared HH data not present")
def test_real_hh_harmless_dev_file():
    from io import StringIO

    out = StringIO()
    call_command("import_pairs", "HH", str(HH_DATA), stdout=out, stderr=StringIO())
    assert out.getvalue().strip() == "imported 1812, skipped 0"
    assert Pair.objects.count() == 1812
    assert Label.objects.filter(source="imported").count() == 1812
    out = StringIO()
    call_command("import_pairs", "HH", str(HH_DATA), stdout=out, stderr=StringIO())
    assert out.getvalue().strip() == "imported 0, skipped 1812"
    assert Pair.objects.count() == 1812


def test_an_empty_file_is_refused_not_reported_as_imported(project, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(CommandError, match="holds no rows"):
        call_command("import_pairs", project.name, str(path))


def long_line_upload(name: str, lines: list[bytes]):
    """An upload as a web request hands it over once it is past the in-memory size: a file
    on disk behind Django's UploadedFile."""
    from django.core.files.uploadedfile import TemporaryUploadedFile

    body = b"".join(line + b"\n" for line in lines)
    upload = TemporaryUploadedFile(name, "application/octet-stream", len(body), None)
    upload.write(body)
    upload.seek(0)
    return upload


def pair_line(response_bytes: int, pair_id: str = "long") -> bytes:
    row = {"id": pair_id, "prompt": "q", "response_a": "x" * response_bytes, "response_b": "y"}
    return json.dumps(row).encode()


CSV_LONG = b"long,q,y," + b"x" * 20_000


@pytest.mark.django_db
class TestLineLimit:
    """IMPORT_MAX_LINE_MB: a line longer than it refuses the file at once; shorter ones import."""

    LIMIT_MB = 0.01  # 10,485 bytes

    @pytest.fixture(autouse=True)
    def small_limit(self, settings):
        settings.IMPORT_MAX_LINE_MB = self.LIMIT_MB

    @pytest.mark.parametrize(
        ("name", "lines", "number"),
        [
            ("pairs.jsonl", [pair_line(10, "ok"), pair_line(50_000)], 2),
            ("pairs.csv", [b"id,prompt,response_a,response_b", b"ok,q,x,y", CSV_LONG], 3),
        ],
    )
    def test_a_line_over_the_limit_is_refused_with_its_number_and_writes_nothing(
        self, project, name, lines, number
    ):
        from annotation.pairs.imports import pairs_import
        from annotation.pairs.readers import FileRejected

        upload = long_line_upload(name, [*lines, pair_line(10, "after")])
        for skip_invalid in (False, True):
            upload.seek(0)
            with pytest.raises(FileRejected, match=rf"line {number} is longer than 0.01 MB"):
                pairs_import(
                    project=project, stream=upload, filename=name, skip_invalid=skip_invalid
                )
            # Refused as soon as the limit was passed, not once the whole line was read.
            assert upload.tell() < sum(len(line) + 1 for line in lines[:-1]) + 11_000
            assert nothing_written()

    def test_the_command_names_the_line_and_writes_nothing(self, tmp_path):
        path = tmp_path / "one-line.jsonl"
        path.write_bytes(pair_line(10, "ok") + b"\n" + pair_line(20_000) + b"\n")
        with pytest.raises(CommandError, match="Nothing imported: line 2 is longer than 0.01 MB"):
            import_pairs(path)
        assert nothing_written()

    def test_a_line_just_under_the_limit_imports(self, project):
        from annotation.pairs.imports import pairs_import

        line = pair_line(0)
        under = pair_line(int(self.LIMIT_MB * 2**20) - len(line))
        assert len(under) == int(self.LIMIT_MB * 2**20)
        upload = long_line_upload("pairs.jsonl", [pair_line(10, "ok"), under])
        report = pairs_import(project=project, stream=upload, filename="pairs.jsonl")
        assert report.summary == "imported 2, skipped 0"
        assert len(Pair.objects.get(external_id="long").response_a) == len(under) - len(line)


@pytest.mark.django_db(transaction=True)
def test_the_same_new_file_imported_four_times_at_once_is_imported_once(on_postgres, project):
    """Four requests, each on its own database connection: one imports the pairs, the others
    find them there, as a second import one after the other would."""
    import threading

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection

    from tests.conftest import client_for
    from tests.factories import MembershipFactory

    lead = MembershipFactory(project=project, role="lead").user
    rows = [{"id": f"c{i}", "prompt": f"q{i}", "chosen": f"a{i}", "rejected": f"b{i}"}
            for i in range(500)]  # fmt: skip
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    barrier, answers = threading.Barrier(4), []

    def send():
        client = client_for(lead)
        client.raise_request_exception = False  # a 500 is an answer to count, not a crash
        try:
            upload = SimpleUploadedFile("same.jsonl", body, content_type="application/jsonl")
            barrier.wait()
            answers.append(client.post(f"/api/projects/{project.pk}/import/", {"file": upload}))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [201] * 4, [a.content for a in answers]
    assert sorted(a.json()["imported"] for a in answers) == [0, 0, 0, 500]
    assert Pair.objects.filter(project=project).count() == 500
    assert Label.objects.filter(pair__project=project).count() == 500
