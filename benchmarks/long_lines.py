"""Reading an uploaded file against the length of its lines (no database).

Target: reading time that grows with the file's size, not with the square of its longest
line, and a line over IMPORT_MAX_LINE_MB refused at once. Before: a 300 MB upload of one
line held a web worker until it was killed, and 10/20/40 MB of one line took 0.32/1.21/4.30 s.

Each file is handed over as a web request hands over a large upload (a file on disk behind
Django's TemporaryUploadedFile) and read into records by the importers' reader, once as
before (iterating the upload, which joins its 64 KB chunks to the line one at a time) and
once as now (the file's own readline). The one-line files are read under a limit raised
above their size; the last row reads a line far over the default limit, now only.

    .venv/bin/python benchmarks/long_lines.py [--sizes 10 20 40] [--refuse-mb 300] [--repeat 3]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def upload(head: bytes, repeated: bytes, total: int):
    """A TemporaryUploadedFile holding `head`, then `repeated` until it holds `total` bytes."""
    from django.core.files.uploadedfile import TemporaryUploadedFile

    file = TemporaryUploadedFile("bench", "application/octet-stream", total, None)
    file.write(head)
    for _ in range(max(0, total - len(head)) // len(repeated) if repeated else 0):
        file.write(repeated)
    file.seek(0)
    return file


def one_line(megabytes: float) -> tuple[bytes, bytes]:
    text = "x" * int(megabytes * 2**20)
    row = {"prompt": "q", "response_a": text, "response_b": "y"}
    return json.dumps(row).encode() + b"\n", b""


def short_lines(fmt: str) -> tuple[bytes, bytes]:
    """A header (CSV) and a row of about 1 KB to repeat."""
    if fmt == "csv":
        return b"prompt,response_a,response_b\n", b"q," + b"x" * 1000 + b",y\n"
    row = {"prompt": "q", "response_a": "x" * 1000, "response_b": "y"}
    return b"", json.dumps(row).encode() + b"\n"


def seconds_to_read(file, name: str, *, before: bool, repeat: int = 1) -> float:
    """The best of `repeat` reads (the machine is shared: the least disturbed one)."""
    from annotation.pairs import readers

    now = readers._lines
    if before:
        readers._lines = lambda stream: enumerate(stream, start=1)
    try:
        best = float("inf")
        for _ in range(repeat):
            file.seek(0)
            started = time.perf_counter()
            for _ in readers.read_records(file, name, "auto"):
                pass
            best = min(best, time.perf_counter() - started)
        return best
    finally:
        readers._lines = now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[10, 20, 40])
    parser.add_argument("--refuse-mb", type=float, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="reads of each file; best kept")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    from annotation.pairs.readers import FileRejected

    default_limit = settings.IMPORT_MAX_LINE_MB
    settings.IMPORT_MAX_LINE_MB = max(args.sizes) * 2
    cases = [
        ("one line, JSONL", "f.jsonl", lambda mb: one_line(mb)),
        ("1 KB lines, JSONL", "f.jsonl", lambda mb: short_lines("jsonl")),
        ("1 KB lines, CSV", "f.csv", lambda mb: short_lines("csv")),
    ]
    print(f"{'file':<20} {'size':>7} {'before':>9} {'now':>9} {'speed-up':>9}")
    growth = []
    for label, name, make in cases:
        times = {}
        for mb in args.sizes:
            file = upload(*make(mb), int(mb * 2**20))
            before = seconds_to_read(file, name, before=True, repeat=args.repeat)
            now = seconds_to_read(file, name, before=False, repeat=args.repeat)
            file.close()
            times[mb] = (before, now)
            print(f"{label:<20} {mb:>4g} MB {before:>7.2f} s {now:>7.2f} s {before / now:>8.1f}x")
        small, large = times[min(args.sizes)], times[max(args.sizes)]
        growth.append((label, large[0] / small[0], large[1] / small[1]))
    factor = max(args.sizes) / min(args.sizes)
    print(f"\ntime at {max(args.sizes):g} MB / time at {min(args.sizes):g} MB "
          f"(linear: {factor:g}x, quadratic: {factor**2:g}x)")  # fmt: skip
    for label, before, now in growth:
        print(f"{label:<20} before {before:>5.1f}x   now {now:>5.1f}x")

    settings.IMPORT_MAX_LINE_MB = default_limit
    file = upload(*one_line(args.refuse_mb), int(args.refuse_mb * 2**20))
    started = time.perf_counter()
    try:
        seconds_to_read(file, "f.jsonl", before=False)
        refused = "read whole"
    except FileRejected as exc:
        refused = str(exc)
    seconds = time.perf_counter() - started
    print(f"\none line of {args.refuse_mb:g} MB, IMPORT_MAX_LINE_MB={default_limit:g}: "
          f"{seconds:.2f} s: {refused}")  # fmt: skip
    file.close()


if __name__ == "__main__":
    main()
