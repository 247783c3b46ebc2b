"""The query model and the engineers' query language, shared by the CLI, the API and every store.

    user.name:alice AND event.outcome:failure AND NOT source.ip:10.0.0.0/8
    event.action:(ssh_login OR su) user.name:adm*  http.response.status_code:>=500
    "POSSIBLE BREAK-IN"                             (free text in the message / raw record)

Text is parsed into a small tree (Term, And, Or, Not) that each store translates itself
(parameterised SQL, Elasticsearch DSL). User text is never passed through as a raw query string
or SQL fragment, and unknown fields are rejected with the position of the mistake.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from access_audit.core.errors import QueryError
from access_audit.core.fields import FIELD_TYPES, FREE_TEXT, PERSONAL, field_class, known_field

Op = Literal["eq", "prefix", "cidr", "exists", "text", "gt", "gte", "lt", "lte"]
IP_FIELDS = {"source.ip", "destination.ip", "related.ip"}


@dataclass(frozen=True)
class Term:
    field: str  # "" for free text
    op: Op
    value: str | float | None = None


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


@dataclass(frozen=True)
class MatchAll:
    pass


Expr = Term | And | Or | Not | MatchAll


@dataclass
class Query:
    """What to fetch: a filter tree, a time range (event time), order, page size and cursor.

    ``after`` is the sort key of the last hit of the previous page (search_after), so deep
    pagination stays cheap on both stores.
    """

    expr: Expr = field(default_factory=MatchAll)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    order: Literal["asc", "desc"] = "desc"
    after: tuple[str, str] | None = None  # (@timestamp ISO, event id) of the previous page's last hit


# --- building from simple filters -------------------------------------------------------------

def _check_text(text: str) -> None:
    """Reject lone surrogates (undecodable bytes in argv, ``\\ud800`` in JSON): no store can encode them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise QueryError(f"invalid character at position {e.start + 1}: not valid Unicode text") from None


FIELD_ALIASES = {"log_type": "event.dataset", "dataset": "event.dataset"}  # names people type


def canonical_field(name: str) -> str:
    return FIELD_ALIASES.get(name, name)


def unknown_field(name: str, where: str = "") -> QueryError:
    """The error for a field that does not exist, with the nearest valid names."""
    import difflib

    near = difflib.get_close_matches(name, [*FIELD_TYPES, *FIELD_ALIASES], n=3, cutoff=0.6)
    return QueryError(f"unknown field {name!r}{where}" + (f"; did you mean {', '.join(near)}?" if near else ""))


def _canonical_log_type(value: str) -> str:
    """``sshd`` -> ``syslog``: a parser alias finds the events its parser wrote."""
    from access_audit.parse.base import _REGISTRY, known_log_types  # lazy: parsers are not needed to query

    return _REGISTRY[value].name if value in known_log_types() else value


def term_for(field_name: str, value: str) -> Term:
    """A term for ``field:value`` as the query language would read it (wildcard, cidr)."""
    _check_text(field_name)
    _check_text(value)
    field_name = canonical_field(field_name)
    if not known_field(field_name):
        raise unknown_field(field_name)
    if value == "*":
        return Term(field_name, "exists")
    if field_name in IP_FIELDS and "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise QueryError(f"invalid network {value!r} for {field_name}") from None
        return Term(field_name, "cidr", value)
    if value.endswith("*") and "*" not in value[:-1]:
        return Term(field_name, "prefix", value[:-1])
    if "*" in value:
        raise QueryError(f"only a trailing * is supported (in {value!r})")
    if FIELD_TYPES.get(field_name) is int and re.fullmatch(r"[+-]?\d+", value.strip()):
        _in_range(field_name, float(value))
    return literal_term(field_name, value)


def literal_term(field_name: str, value: str) -> Term:
    """``field = value`` with no wildcard (a quoted value): addresses are checked, log types canonical."""
    if field_name in IP_FIELDS and not _PSEUDONYM.match(value):  # a pseudonym is resolved later
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise QueryError(f"invalid address {value!r} for {field_name}: use e.g. 203.0.113.7, 2001:db8::1 "
                             "or a network such as 203.0.113.0/24") from None
    if field_name == "event.dataset":
        value = _canonical_log_type(value)
    return Term(field_name, "eq", value)


MAX_INT = 2 ** 63 - 1


def _in_range(field_name: str, value: float) -> None:
    """Numbers a store can hold (SQLite and Elasticsearch longs): an overflow is the caller's mistake."""
    if value != value or abs(value) > MAX_INT:
        raise QueryError(f"number out of range for {field_name} (at most {MAX_INT})")


def and_of(terms: list[Expr]) -> Expr:
    if not terms:
        return MatchAll()
    return terms[0] if len(terms) == 1 else And(tuple(terms))


# --- the language -----------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<lp>\() | (?P<rp>\))
  | (?P<quoted>"(?:[^"\\]|\\.)*"?)
  | (?P<cmp>(?:>=|<=|>|<))
  | (?P<word>[^\s()":<>]+(?::(?![\s)]))?)
  | (?P<colon>:)
""", re.X)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise QueryError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        kind = m.lastgroup or ""
        if kind == "quoted" and (len(m.group()) < 2 or not m.group().endswith('"') or m.group().endswith('\\"')):
            raise QueryError(f"unterminated quote at position {pos + 1}")
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s[1:-1])


MAX_DEPTH = 32  # NOT and ( levels: deeper trees overflow SQLite's parser stack (and Python's)


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > 4000:
            raise QueryError("query too long (over 4000 characters)")
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        t = self.peek()
        if t is None:
            raise QueryError("unexpected end of query")
        self.i += 1
        return t

    def parse(self) -> Expr:
        if not self.toks:
            return MatchAll()
        e = self.or_()
        if self.peek() is not None:
            t = self.peek()
            assert t is not None
            raise QueryError(f"unexpected {t.text!r} at position {t.pos + 1}")
        return e

    def _is(self, word: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "word" and t.text == word

    def or_(self) -> Expr:
        items = [self.and_()]
        while self._is("OR"):
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Expr:
        items = [self.unary()]
        while True:
            t = self.peek()
            if t is None or t.kind == "rp" or self._is("OR"):
                break
            if self._is("AND"):
                self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Expr:
        self.depth += 1
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Expr:
        if self.depth > MAX_DEPTH:
            t = self.peek()
            raise QueryError(f"query nested too deeply (over {MAX_DEPTH} levels of NOT and parentheses)"
                             + (f" at position {t.pos + 1}" if t else ""))
        if self._is("NOT"):
            self.take()
            return Not(self.unary())
        t = self.take()
        if t.kind == "word" and t.text.startswith("-") and len(t.text) > 1:
            raise QueryError(f"use NOT instead of '-' at position {t.pos + 1}")
        if t.kind == "lp":
            e = self.or_()
            close = self.peek()
            if close is None or close.kind != "rp":
                raise QueryError(f"missing ')' for '(' at position {t.pos + 1}")
            self.take()
            return e
        if t.kind == "quoted":
            return Term("", "text", _unquote(t.text))
        if t.kind == "word" and t.text.endswith(":"):
            return self.field_expr(t.text[:-1], t)
        if t.kind == "word":
            if t.text in ("AND", "OR"):
                raise QueryError(f"{t.text} needs something on both sides (position {t.pos + 1})")
            if ":" in t.text:
                f, _, v = t.text.partition(":")
                return self._field_value(f, v, t)
            return Term("", "text", t.text)
        raise QueryError(f"unexpected {t.text!r} at position {t.pos + 1}")

    def field_expr(self, fname: str, at: _Tok) -> Expr:
        fname = canonical_field(fname)
        if not known_field(fname):
            raise unknown_field(fname, f" at position {at.pos + 1}")
        t = self.take()
        if t.kind == "cmp":
            v = self.take()
            if v.kind not in ("word", "quoted"):
                raise QueryError(f"expected a value after {t.text} at position {v.pos + 1}")
            return self._compare(fname, t.text, v.text if v.kind == "word" else _unquote(v.text), v)
        if t.kind == "quoted":
            try:
                return literal_term(fname, _unquote(t.text))
            except QueryError as e:
                raise QueryError(f"{e} (position {at.pos + 1})") from None
        if t.kind == "word":
            return self._field_value(fname, t.text, at)
        if t.kind == "lp":  # field:(a OR b)
            vals: list[Expr] = []
            while True:
                v = self.take()
                if v.kind == "rp":
                    break
                if v.kind == "word" and v.text == "OR":
                    continue
                if v.kind not in ("word", "quoted"):
                    raise QueryError(f"unexpected {v.text!r} at position {v.pos + 1}")
                vals.append(term_for(fname, v.text) if v.kind == "word" else literal_term(fname, _unquote(v.text)))
            if not vals:
                raise QueryError(f"empty value list for {fname} at position {at.pos + 1}")
            return vals[0] if len(vals) == 1 else Or(tuple(vals))
        raise QueryError(f"expected a value for {fname} at position {t.pos + 1}")

    def _field_value(self, fname: str, value: str, at: _Tok) -> Expr:
        fname = canonical_field(fname)
        if not known_field(fname):
            raise unknown_field(fname, f" at position {at.pos + 1}")
        try:
            return term_for(fname, value)
        except QueryError as e:
            raise QueryError(f"{e} (position {at.pos + 1})") from None

    def _compare(self, fname: str, op: str, value: str, at: _Tok) -> Term:
        name = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
        ftype = FIELD_TYPES.get(fname)
        if ftype is datetime:
            return Term(fname, name, parse_when(value).isoformat())  # type: ignore[arg-type]
        try:
            number = float(value)
        except ValueError:
            raise QueryError(f"{op} needs a number for {fname} (got {value!r} at position {at.pos + 1})") from None
        _in_range(fname, number)
        return Term(fname, name, number)  # type: ignore[arg-type]


def parse_query(text: str) -> Expr:
    """Parse the query language into a filter tree. Raises QueryError saying where it went wrong.

    A query of only ``*`` (or nothing) is every event, as in Kibana and Lucene; the CLI names the
    absent query ``*`` in its self-audit records, and a search for a literal asterisk is ``"*"``."""
    _check_text(text)
    if text.strip() in ("", "*"):
        return MatchAll()
    return _Parser(text).parse()


_REL = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """'24h', '7d' (ago) or an ISO 8601 date/time -> aware UTC datetime."""
    now = now or datetime.now(UTC)
    m = _REL.match(text.strip())
    if m:
        secs = int(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m[2]]
        try:
            return now - timedelta(seconds=secs)
        except OverflowError:
            raise QueryError(f"invalid time {text!r}: that is before the year 1; use e.g. 24h, 7d, 3650d") from None
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"invalid time {text!r}: use e.g. 24h, 7d or 2026-11-23T10:00:00Z") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# --- roles that see pseudonyms ------------------------------------------------------------------

class PseudonymRefusedError(QueryError):
    """A query that would link a pseudonym to a person, from a role that sees pseudonyms (403)."""


_PSEUDONYM = re.compile(r"^p-[0-9a-f]{16}$")


def for_pseudonyms(expr: Expr, resolve: Callable[[str, str], list[str]], role: str = "this role") -> Expr:
    """``expr`` as a role that sees pseudonyms may run it (see ``core.fields.FIELD_CLASSES``).

    On personal and free-text fields (and unclassified ones) only ``field:p-...`` (a pseudonym,
    rewritten through ``resolve(field, pseudonym) -> clear values``) and ``field:*`` are allowed;
    a clear value, a prefix, a network (CIDR), a range or free text is refused: each would let the
    caller test a guess against a pseudonym. Quasi-identifiers and safe fields are left as they are.
    Raises PseudonymRefusedError."""

    def refuse(why: str) -> PseudonymRefusedError:
        return PseudonymRefusedError(f"{role} sees pseudonyms: {why}")

    def walk(e: Expr) -> Expr:
        if isinstance(e, And):
            return And(tuple(walk(x) for x in e.items))
        if isinstance(e, Or):
            return Or(tuple(walk(x) for x in e.items))
        if isinstance(e, Not):
            return Not(walk(e.item))
        if not isinstance(e, Term):
            return e
        if e.op == "text" or not e.field:
            raise refuse("free text searches messages and raw records, which can name anyone: filter on fields")
        if field_class(e.field) not in (PERSONAL, FREE_TEXT) or e.op == "exists":
            return e
        v = str(e.value)
        if e.op == "eq" and _PSEUDONYM.match(v):
            clear = resolve(e.field, v)
            if not clear:
                return Term(e.field, "eq", v)  # matches nothing
            return Term(e.field, "eq", clear[0]) if len(clear) == 1 else \
                Or(tuple(Term(e.field, "eq", c) for c in clear))
        kind = {"cidr": "a network", "prefix": "a prefix", "eq": "a clear value"}.get(e.op, "a range")
        raise refuse(f"filter {e.field} by a pseudonym (p-...) you were shown, not by {kind}")

    return walk(expr)
