"""Reads of dataset versions: by name or id, their rows, their files for download, and what a
version's page shows."""

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage

from annotation.activity import Kind, record
from annotation.curation.selection import CurationFilters, curation_select, selection_rows
from annotation.models import (
    CuratedDataset,
    Round,
)


def held_out_rows(round_: Round) -> list[dict]:
    """A round's fresh held-out set as preference rows (prompt, chosen, rejected, margin,
    difficulty, ...): its held-out pairs whose labels, from every source, have a consensus
    winner; ties and contested pairs are left out, as curation leaves them out."""
    filters = CurationFilters(test_fraction=0.0)
    selection = curation_select(project=round_.project, filters=filters, held_out_of=round_)
    return selection_rows(selection, filters)[0] if selection.count else []


def dataset_get(identifier: str) -> CuratedDataset:
    dataset = CuratedDataset.objects.select_related("project").filter(identifier=identifier).first()
    if dataset is None:
        raise ValidationError(f"No dataset version {identifier!r} (identifiers look like name@v1).")
    return dataset


def dataset_snapshot(dataset: CuratedDataset) -> bytes:
    """The version's JSONL snapshot, checked against its sha256."""
    with default_storage.open(dataset.snapshot, "rb") as stream:
        content = stream.read()
    if hashlib.sha256(content).hexdigest() != dataset.sha256:
        raise ValidationError(f"The snapshot of {dataset.identifier} does not match its sha256.")
    return content


def dataset_rows(dataset: CuratedDataset) -> list[dict]:
    return [json.loads(line) for line in dataset_snapshot(dataset).splitlines()]


def dataset_head(dataset: CuratedDataset, n: int) -> list[dict]:
    """The version's first rows, read without loading the rest (for its page)."""
    rows = []
    with default_storage.open(dataset.snapshot, "rb") as stream:
        for line in stream:
            if len(rows) == n:
                break
            rows.append(json.loads(line))
    return rows


def dataset_table(dataset: CuratedDataset):
    """The version as an Arrow table, read by Arrow's own JSON reader (no Python rows)."""
    import pyarrow as pa
    import pyarrow.json

    return pyarrow.json.read_json(pa.BufferReader(dataset_snapshot(dataset)))


DOWNLOAD_TYPES = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
CHUNK = 1 << 20


def dataset_file(dataset: CuratedDataset, fmt: str):
    """The version as an open file in storage, to be streamed: the JSONL snapshot (checked
    against its sha256 a megabyte at a time), or a Parquet file made from it on the first
    request and kept beside it. Memory does not grow with the dataset."""
    if fmt == "jsonl":
        stream = default_storage.open(dataset.snapshot, "rb")
        digest = hashlib.sha256()
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
        if digest.hexdigest() != dataset.sha256:
            stream.close()
            raise ValidationError(
                f"The snapshot of {dataset.identifier} does not match its sha256."
            )
        stream.seek(0)
        return stream
    if fmt == "parquet":
        name = dataset.snapshot.removesuffix(".jsonl") + ".parquet"
        if not default_storage.exists(name):
            import pyarrow.parquet as pq

            with tempfile.TemporaryFile() as made:
                pq.write_table(dataset_table(dataset), made)
                made.seek(0)
                saved = default_storage.save(name, File(made))
            if saved != name:  # made at the same moment by another request: keep one
                default_storage.delete(saved)
        return default_storage.open(name, "rb")
    raise ValidationError(f"Unknown format {fmt!r}; use jsonl or parquet.")


def dataset_download(dataset: CuratedDataset, fmt: str):
    """(open file, content type, file name) for a download in `fmt` (jsonl or parquet),
    logged in the activity log as downloaded."""
    if fmt not in DOWNLOAD_TYPES:
        raise ValidationError(f"Unknown format {fmt!r}; use jsonl or parquet.")
    name = f"{dataset.name}-v{dataset.version}.{fmt}"
    stream = dataset_file(dataset, fmt)
    record(Kind.DATASET_DOWNLOADED, project=dataset.project, target=dataset, summary=name)
    return stream, DOWNLOAD_TYPES[fmt], name


SAMPLE_ROWS = 5  # rows of a version shown on its page


def _shown(value) -> str:
    if value is None or value == []:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def dataset_context(*, dataset: CuratedDataset) -> dict:
    """What the dataset page shows of the version itself (its manifest and first rows)."""
    from annotation.rendering import prompt_preview, render_preview

    manifest = dataset.manifest
    samples = []
    for row in dataset_head(dataset, SAMPLE_ROWS):
        turns, earlier = prompt_preview(row["prompt"])
        chosen, rejected = (
            text[-1]["content"] if isinstance(text, list) else text
            for text in (row["chosen"], row["rejected"])
        )
        samples.append(
            {
                **row,
                "prompt_turns": turns,
                "earlier_turns": earlier,
                "chosen_html": render_preview(chosen),
                "rejected_html": render_preview(rejected),
            }
        )
    considered = manifest.get("rows", 0) + sum(manifest.get("dropped", {}).values())
    return {
        "dataset": dataset,
        "project": dataset.project,
        "by_difficulty": manifest.get("by_difficulty", {}),
        "by_source": sorted(manifest.get("by_label_source", {}).items(), key=lambda kv: -kv[1]),
        "dropped": sorted(manifest.get("dropped", {}).items(), key=lambda kv: -kv[1]),
        "considered": considered,
        "balance_length": manifest.get("balance_length"),
        "filters": [(name, _shown(value)) for name, value in sorted(manifest["filters"].items())],
        "samples": samples,
        "manifest_json": json.dumps(manifest, indent=2),
    }


EXPORT_FORMATS = ("jsonl", "parquet", "hf")


def dataset_export(*, dataset: CuratedDataset, fmt: str, out: Path, force: bool = False) -> Path:
    """Write the version to `out`: a JSONL or Parquet file, or (hf) a `datasets` folder with
    train and test splits for `load_from_disk`."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}; use {', '.join(EXPORT_FORMATS)}.")
    if out.exists() and not force:
        raise ValidationError(f"{out} exists; pass --force to overwrite it.")
    if fmt == "hf":
        from datasets import Dataset, DatasetDict, disable_progress_bars

        disable_progress_bars()

        import pyarrow.compute as pc

        table = dataset_table(dataset)
        splits = DatasetDict(
            {
                split: Dataset(table.filter(pc.equal(table["split"], split)))
                for split in ("train", "test")
                if pc.any(pc.equal(table["split"], split)).as_py()
            }
        )
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        splits.save_to_disk(str(out))
    else:
        with dataset_file(dataset, fmt) as source, out.open("wb") as target:
            shutil.copyfileobj(source, target, CHUNK)
    return out
