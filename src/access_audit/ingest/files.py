"""Raw records from files, directories and stdin, one record per line.

Lines end at LF; a CR before it (CRLF files) is removed. Blank lines are not records and are only
counted. Gzip files (``.gz``) are read transparently. Each record's origin is
``<absolute path>:<line number>`` (shown in dead letters). Event ids do not depend on it: they hash
the stream name (``--source-name``), the bytes and the occurrence of identical bytes in the same
file, so a file renamed, rotated (``auth.log`` -> ``auth.log.1`` -> ``auth.log.2.gz``) or copied
is recognised (docs/design/decisions.md §2).

Nothing is skipped silently: files of a folder that are not logs (``*.md``, ``*.zip``, hidden
files) are listed in ``skipped``; a file that cannot be read (a corrupt or truncated ``.gz``, no
permission) is listed in ``file_errors`` with the reason and the number of lines read before the
problem (those are kept), and the other files are still read.

CSV files (``.csv``, ``.csv.gz``) are read as tables: each row becomes one record, the JSON object
of the row keyed by the header line (``{"Event Name": "ListObjects", ...}``), which the JSON
parsers recognise (the S3 honey-bucket export has one); a CSV no parser knows ends as dead
letters with the reason, never silently.

Linux auditd lines (``type=... msg=audit(<time>:<serial>)``) are the one exception to "one record
per line": the records of one serial (SYSCALL + EXECVE + PATH...) are joined into one record, lines
separated by LF, origin the first line (``parse.auditd.join_lines``; not when ``--log-type`` names
another parser). ``records_by_source`` counts those joined records.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import orjson

from access_audit.core.records import OccurrenceCounter, RawRecord
from access_audit.parse.auditd import ALIASES as _AUDITD_ALIASES
from access_audit.parse.auditd import NAME as _AUDITD_NAME
from access_audit.parse.auditd import join_lines

_AUDITD_NAMES = frozenset({_AUDITD_NAME, *_AUDITD_ALIASES})

SKIP_SUFFIXES = {".md", ".zip", ".7z", ".tar", ".rar", ".pdf", ".png", ".jpg", ".pkl", ".parquet"}


NOT_LOG_NAMES = ("license", "licence", "notice", "copying", "readme", "authors", "changelog", "provenance")


def _skipped_reason(f: Path) -> str | None:
    if f.name.startswith("."):
        return "hidden file"
    if f.name.lower().split(".")[0].split("-")[0] in NOT_LOG_NAMES:
        return "not a log (documentation)"
    if f.suffix.lower() in SKIP_SUFFIXES:
        return f"not a log ({f.suffix.lower()})"
    return None


def scan_inputs(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand directories (recursively, sorted) into files to read, and the files skipped with the
    reason. Raise FileNotFoundError for a path that does not exist. A file named explicitly is read."""
    out: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for p in paths:
        if str(p) == "-":
            out.append(p)
        elif p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                if any(part.startswith(".") for part in f.relative_to(p).parts[:-1]):
                    continue  # inside a hidden folder (.git...): not the user's logs
                why = _skipped_reason(f)
                if why:
                    skipped.append((f, why))
                else:
                    out.append(f)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"input {p} does not exist")
    return out, skipped


def input_files(paths: list[Path]) -> list[Path]:
    """The files to read (see ``scan_inputs``)."""
    return scan_inputs(paths)[0]


@dataclass
class FileError:
    path: str
    reason: str
    lines_read: int


class LineReader:
    """Iterates the raw records of inputs. ``blank_lines`` counts the blank lines skipped,
    ``records_by_source`` the records of each input, ``skipped`` and ``file_errors`` say what was
    not read (see the module docstring)."""

    def __init__(self, paths: list[Path], *, log_type: str | None = None, year: int | None = None,
                 source_name: str = "") -> None:
        self.paths, self.skipped = scan_inputs(paths)
        self.log_type = log_type
        self.year = year
        self.stream = source_name
        self.blank_lines = 0
        self.records_by_source: Counter[str] = Counter()
        self.file_errors: list[FileError] = []

    def __iter__(self) -> Iterator[RawRecord]:
        for p in self.paths:
            if str(p) == "-":
                yield from self._lines(sys.stdin.buffer, "stdin", "stdin")
                continue
            ap = str(p.resolve())
            before = self.records_by_source[ap]
            try:
                opener = gzip.open if p.suffix == ".gz" else open
                with opener(p, "rb") as fh:  # type: ignore[operator]
                    if p.name.lower().endswith((".csv", ".csv.gz")):
                        yield from self._csv_rows(cast(BinaryIO, fh), ap)
                    else:
                        yield from self._lines(cast(BinaryIO, fh), ap, ap)
            except (gzip.BadGzipFile, zlib.error) as e:
                self._error(ap, f"corrupt gzip file: {e}", before)
            except (csv.Error, UnicodeDecodeError) as e:
                self._error(ap, f"not a readable CSV file: {e}", before)
            except EOFError:
                self._error(ap, "truncated gzip file (it ends before its end marker)", before)
            except OSError as e:
                self._error(ap, f"cannot read: {e.strerror or e}", before)

    def _error(self, ap: str, reason: str, before: int) -> None:
        self.file_errors.append(FileError(ap, reason, self.records_by_source[ap] - before))

    def _lines(self, fh: BinaryIO, source: str, origin_prefix: str) -> Iterator[RawRecord]:
        occurrences = OccurrenceCounter()  # per input: a file, stdin
        log_type, stream, year = self.log_type, self.stream, self.year
        counts = self.records_by_source
        numbered: Iterator[tuple[int, bytes]] = self._numbered(fh)
        if log_type is None or log_type in _AUDITD_NAMES:
            numbered = join_lines(numbered)  # the records of one auditd event become one record
        for n, line in numbered:
            counts[source] += 1
            yield RawRecord(data=line, origin=f"{origin_prefix}:{n}", source=source, log_type=log_type,
                            year=year, stream=stream, occurrence=occurrences.next(log_type, stream, line))

    def _numbered(self, fh: BinaryIO) -> Iterator[tuple[int, bytes]]:
        for n, line in enumerate(fh, start=1):
            if line.endswith(b"\n"):
                line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                self.blank_lines += 1
                continue
            yield n, line

    def _csv_rows(self, fh: BinaryIO, source: str) -> Iterator[RawRecord]:
        occurrences = OccurrenceCounter()
        log_type, stream, year = self.log_type, self.stream, self.year
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.DictReader(text)
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                self.blank_lines += 1
                continue
            extra = row.pop(None, None)  # type: ignore[call-overload]  # cells beyond the header
            if extra:
                row["_extra"] = extra
            data = orjson.dumps(row)
            self.records_by_source[source] += 1
            yield RawRecord(data=data, origin=f"{source}:{reader.line_num}", source=source, log_type=log_type,
                            year=year, stream=stream, occurrence=occurrences.next(log_type, stream, data))
