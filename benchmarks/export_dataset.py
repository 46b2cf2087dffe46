"""Cut and export 100,000 curated pairs (PostgreSQL).

Target (agreement issue): exporting 100,000 curated pairs in at most 5 s. 100,000 labelled
pairs are imported the way HH-RLHF files are ({prompt, chosen, rejected}, one label each);
then one version is curated (the snapshot that every export reads) and exported as JSONL,
Parquet and a Hugging Face `datasets` folder, each timed on its own.

    .venv/bin/python benchmarks/export_dataset.py [--rows 100000]
"""

import argparse
import tempfile
import time
from pathlib import Path

from _setup import django_on_scratch_database
from import_pairs import write_rows

TARGET_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    django_on_scratch_database()
    from django.conf import settings

    from annotation.curation.selection import CurationFilters
    from annotation.curation.selectors import dataset_export
    from annotation.curation.services import dataset_curate
    from annotation.pairs.imports import pairs_import
    from annotation.projects.services import project_ensure

    with tempfile.TemporaryDirectory() as folder:
        settings.MEDIA_ROOT = Path(folder) / "media"
        source = Path(folder) / "pairs.jsonl"
        write_rows(str(source), args.rows, labelled_share=1.0)
        project, _ = project_ensure(name="bench")
        with source.open("rb") as stream:
            pairs_import(project=project, stream=stream, filename=source.name)

        started = time.perf_counter()
        dataset = dataset_curate(
            project=project, name="bench", filters=CurationFilters(), user=None
        )
        curate_s = time.perf_counter() - started
        print(f"curate: {dataset.n_rows:,} pairs into {dataset.identifier} in {curate_s:.2f} s")
        for fmt, name in (("jsonl", "out.jsonl"), ("parquet", "out.parquet"), ("hf", "out-hf")):
            started = time.perf_counter()
            dataset_export(dataset=dataset, fmt=fmt, out=Path(folder) / name)
            seconds = time.perf_counter() - started
            print(
                f"export {fmt}: {dataset.n_rows:,} pairs in {seconds:.2f} s; target "
                f"{TARGET_SECONDS:.0f} s -> {TARGET_SECONDS / seconds:.1f}x under target"
            )


if __name__ == "__main__":
    main()
