"""CSV cells a spreadsheet will not run as formulas (CSV injection), for every CSV writer: the API's
exports, the CLI's, the breach register. Here in core so that every room can use it."""

from __future__ import annotations

from typing import Any


def csv_cell(v: Any) -> Any:
    """A value for a CSV cell that a spreadsheet will not run as a formula: a cell starting with
    = + - @ (also full-width, and after leading spaces or line breaks), a tab or a carriage return
    is prefixed with an apostrophe."""
    if isinstance(v, list):
        v = "; ".join(map(str, v))
    if isinstance(v, bool):
        v = "yes" if v else "no"
    if isinstance(v, str) and (v.lstrip(" \t\r\n\u3000")[:1] in _FORMULA or v[:1] in ("\t", "\r", "\n", " ")):
        return "'" + v
    return "" if v is None else v


_FORMULA = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")

#: The line end of every CSV writer (RFC 4180): the CLI's, the API's exports, the breach register.
#: Python's csv module quotes only the cells that hold the delimiter, the quote or a character of the
#: line terminator: with "\n" a cell holding a bare CR goes out unquoted, a spreadsheet (and
#: ``str.splitlines``) starts a new row there, and the text after it (``=1+1``) is a formula again.
#: With "\r\n" such a cell is quoted.
LINE_END = "\r\n"
