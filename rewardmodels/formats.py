"""Files that reward models read: preference pairs to evaluate on, candidates to score or
filter. Same readers as imports (JSONL, CSV, Parquet, HH), same line-numbered errors."""

import json
import uuid
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from annotation.pairs.formats import parse_candidate_record, read_pair_rows
from annotation.pairs.readers import FileRejected, RowError, read_records

MAX_ERRORS_SHOWN = 5


class RowsRejected(Exception):
    """Some rows are bad: nothing was accepted. `errors` holds the first few."""

    def __init__(self, errors: list[RowError], total: int):
        self.errors, self.total = errors, total
        shown = "; ".join(str(e) for e in errors)
        more = f" (and {total - len(errors)} more)" if total > len(errors) else ""
        super().__init__(f"{total} bad rows, nothing accepted: {shown}{more}")


def _collect(rows_or_errors) -> list:
    rows, errors, bad = [], [], 0
    for item in rows_or_errors:
        if isinstance(item, RowError):
            bad += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors.append(item)
        else:
            rows.append(item)
    if bad:
        raise RowsRejected(errors, bad)
    if not rows:
        raise FileRejected("the file holds no rows")
    return rows


def read_preference_pairs(stream: BinaryIO, filename: str, fmt: str = "auto") -> list[dict]:
    """Labelled pairs (chosen/rejected, or HH dialogues) as prompt / chosen / rejected /
    difficulty rows, with agreement and n_votes where the file has them. Any file
    `import_pairs` accepts, as long as each pair says which response was preferred."""

    def pairs():
        for row in read_pair_rows(stream, filename, fmt):
            if isinstance(row, RowError):
                yield row
            elif row.preferred is None:
                yield RowError(row.line, "evaluation needs 'chosen' and 'rejected' responses")
            else:
                chosen, rejected = row.response_a, row.response_b
                if row.preferred == "b":
                    chosen, rejected = rejected, chosen
                difficulty = row.metadata.get("difficulty")
                # A version's export carries its votes: calibration against people reads them.
                votes = {k: row.metadata[k] for k in ("agreement", "n_votes") if k in row.metadata}
                yield {
                    "prompt": row.prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "difficulty": difficulty if isinstance(difficulty, str) else "",
                    **votes,
                }

    return _collect(pairs())


def read_candidates(
    stream: BinaryIO, filename: str, fmt: str = "auto", *, keep_source: bool = False
) -> list[dict]:
    """Candidates as prompt / response / group / record rows. A record is either a prompt
    with its `responses` (or `candidates`) list, or one `{prompt, response}` row; rows
    sharing a prompt form one group, whose best are kept when filtering. keep_source adds
    each row's whole record under "source"."""
    groups: dict[str, int] = {}

    def rows():
        for number, (line, record) in enumerate(read_records(stream, filename, fmt)):
            if isinstance(record, RowError):
                yield record
                continue
            key = json.dumps(record.get("prompt"), sort_keys=True, ensure_ascii=False)
            group = groups.setdefault(key, len(groups))
            found = parse_candidate_record(line, record)
            if isinstance(found, RowError):
                yield found
                continue
            for row in found:
                row.update(group=group, record=number)
                if keep_source:
                    row["source"] = record
                yield row

    return _collect(rows())


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    temporary.replace(path)


def write_rows(path: Path, rows: list[dict]) -> None:
    """JSONL, CSV (lists and chat prompts as JSON text) or Parquet, by the file's extension."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".csv":
        import csv

        columns = list(dict.fromkeys(key for row in rows for key in row))
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: v if isinstance(v, str | int | float) else json.dumps(v, ensure_ascii=False)
                     for k, v in row.items()}
                )  # fmt: skip
    else:
        write_jsonl(path, rows)


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def upload_path(kind: str) -> Path:
    """A new file's place among the uploads of this kind."""
    return Path(settings.MEDIA_ROOT) / kind / f"{uuid.uuid4().hex}.jsonl"
