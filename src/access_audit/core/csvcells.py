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
