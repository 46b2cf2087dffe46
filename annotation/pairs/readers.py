"""Readers for pair and label files: JSONL, CSV and Parquet become numbered records, each a dict or
the error that line has; the parsers in annotation.pairs.formats make rows of them."""

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.conf import settings

from config.inputs import value_problem

FORMATS = ("auto", "jsonl", "csv", "parquet", "hh")


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class FileRejected(Exception):
    """The file as a whole cannot be read (unknown format, undecodable, not Parquet)."""


def detect_format(filename: str, fmt: str) -> str:
    if fmt not in FORMATS:
        raise FileRejected(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    ext = os.path.splitext(filename.lower())[1]
    by_extension = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
    by_extension[".parquet"] = "parquet"
    if ext not in by_extension:
        raise FileRejected(
            f"cannot tell the format of {filename!r} from its extension; "
            "name its format (jsonl, csv, parquet or hh)"
        )
    return by_extension[ext]


def read_records(
    stream: BinaryIO, filename: str, fmt: str
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """The file's rows as records, each row that cannot be stored (text with NUL characters
    or unpaired surrogates, nesting past JSON_MAX_DEPTH) as a RowError naming its line."""
    fmt = detect_format(filename, fmt)
    if fmt in ("jsonl", "hh"):
        records = _read_jsonl(stream)
    elif fmt == "csv":
        records = _read_csv(stream)
    else:
        records = _read_parquet(stream)
    empty = True
    for number, record in records:
        empty = False
        problem = None if isinstance(record, RowError) else value_problem(record)
        yield number, RowError(number, problem) if problem else record
    if empty:
        raise FileRejected("the file holds no rows")


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The file's lines with their numbers, each read whole by the stream's own readline.

    Iterating a Django upload instead joins its 64 KB chunks to the line one at a time, which
    takes time growing with the square of the line's length. A line longer than
    IMPORT_MAX_LINE_MB refuses the file as soon as that much of it is read."""
    limit_mb = settings.IMPORT_MAX_LINE_MB
    limit = int(limit_mb * 2**20)
    number, readline = 0, stream.readline
    while raw := readline(limit + 2):  # + 2: the \r\n ending a line at the limit
        number += 1
        ending = 2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0
        if len(raw) - ending > limit:
            raise FileRejected(
                f"line {number} is longer than {limit_mb:g} MB (IMPORT_MAX_LINE_MB); "
                "each row goes on a line of its own"
            )
        yield number, raw


def _read_jsonl(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    for number, raw in _lines(stream):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, RowError(number, f"bytes that are not UTF-8 (at byte {exc.start})")
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, RowError(number, f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield number, RowError(number, "JSON nested too deeply to read")
            continue
        if not isinstance(record, dict):
            yield number, RowError(number, "expected a JSON object")
            continue
        yield number, record


def _decoded_lines(stream: BinaryIO) -> Iterator[str]:
    """The file's lines as text, one at a time (a byte order mark dropped)."""
    for number, raw in _lines(stream):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FileRejected(
                f"line {number}: bytes that are not UTF-8 (the CSV cannot be read)"
            ) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def _read_csv(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    reader = csv.DictReader(_decoded_lines(stream))
    try:
        for record in reader:
            # Each row is reported by the line it starts on; the header is line 1.
            line = reader.line_num
            if None in record:
                yield line, RowError(line, "more fields than the header names")
                continue
            yield line, {k: v for k, v in record.items() if v is not None}
    except csv.Error as exc:
        raise FileRejected(f"line {reader.line_num}: malformed CSV: {exc}") from exc


PARQUET_BATCH_ROWS = 1000


def _read_parquet(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        number = 0
        for batch in batches:
            for record in batch.to_pylist():
                number += 1
                yield number, record
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileRejected(f"not a readable Parquet file: {exc}") from exc
