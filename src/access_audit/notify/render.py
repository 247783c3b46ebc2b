"""Rendering of the templates in ``notifications/``: a sandboxed jinja2 environment with
``StrictUndefined`` and filters that make untrusted text safe for its target.

Slack mrkdwn has three dangerous constructs, all spelled with angle brackets: ``<!channel>`` /
``<!here>`` (mass mentions), ``<@U123>`` (a user mention) and ``<http://evil|click>`` (a link whose
label hides its target). Escaping ``&``, ``<`` and ``>`` as Slack asks turns each into plain text.
The filters also drop control characters, break ``*bold*``/``_italic_``/``~strike~``/`` `code` ``
markers with a zero-width space so a value cannot restyle the message, and truncate long values.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_MARKERS = re.compile(r"([*_~`])")
_ZWSP = "\u200b"
MAX_VALUE = 300


def notifications_dir() -> Path:
    """The shipped templates: ``notifications/`` next to the source tree, or the installed copy."""
    here = Path(__file__).resolve()
    for cand in (here.parents[3] / "notifications", here.parents[1] / "_notifications"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("the notification templates (notifications/) were not found")


def _clean(value: Any, limit: int) -> str:
    s = "" if value is None else str(value)
    s = _CONTROL.sub("", s.replace("\r\n", "\n").replace("\t", " "))
    if len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(value: Any, limit: int = MAX_VALUE) -> str:
    """Untrusted text as inert Slack mrkdwn: no mentions, no links, no formatting, no control chars."""
    return _MARKERS.sub(r"\1" + _ZWSP, _escape(_clean(value, limit)))


def code(value: Any, limit: int = MAX_VALUE) -> str:
    """Untrusted text as inline code (copyable as is): escaped, one line, no backtick to break out."""
    s = _clean(value, limit).replace("\n", " ").replace("`", "ˋ")
    return f"`{_escape(s)}`" if s else "—"


def code_block(value: Any, limit: int = 1500) -> str:
    """Untrusted text as a code block."""
    s = _clean(value, limit).replace("```", "ˋˋˋ")
    return f"```{_escape(s)}```"


def plain(value: Any, limit: int = MAX_VALUE) -> str:
    """Untrusted text for a ``plain_text`` object (Slack shows it literally): one line, truncated."""
    return _clean(value, limit).replace("\n", " ")


@lru_cache(maxsize=4)
def environment(root: str | None = None) -> SandboxedEnvironment:
    """The jinja2 environment over ``notifications/`` (or ``root``)."""
    env = SandboxedEnvironment(loader=FileSystemLoader(root or str(notifications_dir())),
                               undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(md=mrkdwn, code=code, code_block=code_block, plain=plain)
    return env


def render_json(template: str, root: str | None = None, **context: Any) -> Any:
    """Render a template that produces JSON (values inserted with ``| tojson``) and parse it.

    Raises jinja2's errors for a missing variable (StrictUndefined) and orjson's for invalid JSON:
    both are bugs in a template, never caused by the data.
    """
    text = environment(root).get_template(template).render(**context)
    return orjson.loads(text)
