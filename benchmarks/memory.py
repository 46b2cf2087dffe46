"""Peak memory of imports and downloads against the size of the file (PostgreSQL).

Target (issue: production-ready): peak memory that does not grow with the file beyond a
fixed bound. Before: a CSV import cost about 8.5 times its size (1.7 GiB for 200 MB) and a
Parquet download built the whole file in memory (four at once took a process to 2.1 GiB).

Each case runs in a fresh process, once on a file of --rows rows and once on one four
times as long; the process reports its resident memory once Django is ready and its peak
(VmHWM) at the end, and the table shows what the work added. Flat means the two sizes add
about the same. The cases: importing pairs from JSONL and from CSV, downloading a curated
version as JSONL and as Parquet through the web view (the Parquet file made on the first
download and served from storage after), and `export_labels`.

    .venv/bin/python benchmarks/memory.py [--rows 20000]
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _setup import ROOT, django_on_scratch_database
from import_pairs import write_rows

CASES = ["import-jsonl", "import-csv", "download-jsonl", "make-parquet", "download-parquet"]
CASES += ["export-labels"]


def memory_mb() -> tuple[float, float]:
    """(resident now, peak resident) of this process, in MB (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak() -> None:
    """Start VmHWM again from the current resident size (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def child(case: str, folder: Path, rows: int) -> None:
    """One case in this (fresh) process; prints the JSON of what it measured."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings

    settings.MEDIA_ROOT = str(folder / "media")
    from django.core.management import call_command
    from django.test import Client

    from annotation.models import CuratedDataset, Project
    from annotation.pairs.imports import pairs_import

    project = Project.objects.get(name=f"memory-{rows}")
    # Import the code paths' modules before the baseline, so that only data is measured.
    import pyarrow.parquet  # noqa: F401

    client = Client()
    client.force_login(_admin())
    reset_peak()
    before, _ = memory_mb()
    size = 0
    if case.startswith("import-"):
        path = folder / f"pairs-{rows}.{case.removeprefix('import-')}"
        size = path.stat().st_size
        fresh, _ = Project.objects.get_or_create(name=f"{case}-{rows}")
        with path.open("rb") as stream:
            pairs_import(project=fresh, stream=stream, filename=path.name)
    elif case in ("download-jsonl", "make-parquet", "download-parquet"):
        # The first Parquet download (make-parquet) makes the file; later ones read it.
        fmt = "jsonl" if case == "download-jsonl" else "parquet"
        dataset = CuratedDataset.objects.get(project=project)
        response = client.get(f"/datasets/{dataset.identifier}/download/{fmt}/")
        assert response.status_code == 200, response.status_code
        size = sum(len(chunk) for chunk in response.streaming_content)
        response.close()
    else:
        out = folder / f"labels-{rows}.jsonl"
        call_command("export_labels", project.name, "--out", str(out), "--force")
        size = out.stat().st_size
    after, peak = memory_mb()
    print(json.dumps({"before": before, "peak": peak, "bytes": size}))


def _admin():
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(
        username="memory-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    return user


def prepare(folder: Path, rows: int) -> None:
    """JSONL and CSV files of `rows` labelled pairs, one project holding them, curated."""
    from annotation.curation.selection import CurationFilters
    from annotation.curation.services import dataset_curate
    from annotation.pairs.imports import pairs_import
    from annotation.projects.services import project_ensure

    jsonl = folder / f"pairs-{rows}.jsonl"
    write_rows(str(jsonl), rows, labelled_share=1.0)
    with jsonl.open() as source, (folder / f"pairs-{rows}.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, ["id", "prompt", "chosen", "rejected"])
        writer.writeheader()
        for line in source:
            writer.writerow(json.loads(line))
    project, _ = project_ensure(name=f"memory-{rows}")
    with jsonl.open("rb") as stream:
        pairs_import(project=project, stream=stream, filename=jsonl.name)
    dataset_curate(project=project, name=f"memory-{rows}", filters=CurationFilters(), user=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--child", nargs=3, metavar=("CASE", "FOLDER", "ROWS"), help="internal")
    options = parser.parse_args()
    if options.child:
        case, folder, rows = options.child
        child(case, Path(folder), int(rows))
        return

    database_url = django_on_scratch_database()
    from django.conf import settings

    sizes = [options.rows, 4 * options.rows]
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        settings.MEDIA_ROOT = str(folder / "media")
        for rows in sizes:
            prepare(folder, rows)
        env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_ALLOWED_HOSTS": "testserver"}
        print(
            f"{'case':18} {'rows':>8} {'file MB':>8} {'added MB':>9}  (peak less resident at start)"
        )
        for case in CASES:
            added = []
            for rows in sizes:
                result = subprocess.run(
                    [sys.executable, __file__, "--child", case, str(folder), str(rows)],
                    env=env, capture_output=True, text=True,
                )  # fmt: skip
                if result.returncode:
                    raise SystemExit(f"{case} on {rows} rows failed:\n{result.stderr}")
                figures = json.loads(result.stdout.strip().splitlines()[-1])
                added.append(figures["peak"] - figures["before"])
                print(f"{case:18} {rows:>8,} {figures['bytes'] / 2**20:>8.1f} {added[-1]:>9.1f}")
            print(f"{'':18} 4x the rows: {added[1] / max(added[0], 1):.2f}x the memory added")


if __name__ == "__main__":
    main()
