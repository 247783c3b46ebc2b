"""Raw records from files, directories and stdin, one record per line.

Lines end at LF; a CR before it (CRLF files) is removed. Blank lines are not records and are only
counted. Gzip files (``.gz``) are read transparently. Each record's origin is
``<absolute path>:<line number>`` (shown in dead letters). Event ids do not depend on it: they hash
the stream name (``--source-name``), the bytes and the occurrence of identical bytes in the same
file, so a file renamed, rotated (``auth.log`` -> ``auth.log.1`` -> ``auth.log.2.gz``) or copied
is recognised (docs/design/decisions.md §2).
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from access_audit.core.records import OccurrenceCounter, RawRecord

SKIP_SUFFIXES = {".md", ".csv", ".zip"}


def input_files(paths: list[Path]) -> list[Path]:
    """Expand directories (recursively, sorted) into files; raise FileNotFoundError for missing paths."""
    out: list[Path] = []
    for p in paths:
        if str(p) == "-":
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix not in SKIP_SUFFIXES
                              and not f.name.startswith(".")))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"input {p} does not exist")
    return out


class LineReader:
    """Iterates the raw records of inputs. ``blank_lines`` counts the blank lines skipped."""

    def __init__(self, paths: list[Path], *, log_type: str | None = None, year: int | None = None,
                 source_name: str = "") -> None:
        self.paths = input_files(paths)
        self.log_type = log_type
        self.year = year
        self.stream = source_name
        self.blank_lines = 0

    def __iter__(self) -> Iterator[RawRecord]:
        for p in self.paths:
            if str(p) == "-":
                yield from self._lines(sys.stdin.buffer, "stdin", "stdin")
            else:
                opener = gzip.open if p.suffix == ".gz" else open
                with opener(p, "rb") as fh:  # type: ignore[operator]
                    ap = str(p.resolve())
                    yield from self._lines(cast(BinaryIO, fh), ap, ap)

    def _lines(self, fh: BinaryIO, source: str, origin_prefix: str) -> Iterator[RawRecord]:
        occurrences = OccurrenceCounter()  # per input: a file, stdin
        log_type, stream, year = self.log_type, self.stream, self.year
        for n, line in enumerate(fh, start=1):
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                self.blank_lines += 1
                continue
            yield RawRecord(data=line, origin=f"{origin_prefix}:{n}", source=source, log_type=log_type,
                            year=year, stream=stream, occurrence=occurrences.next(log_type, stream, line))
