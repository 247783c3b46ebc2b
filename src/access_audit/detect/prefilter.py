"""The dispatch index: which rules can an event match at all?

As Suricata's prefilter (its "fast pattern") picks the few signatures an input can match before
inspecting them in full, each compiled rule here declares the literal equalities its condition
*requires* (``event.action`` in {...}, CloudTrail ``eventSource``/``eventName``, Okta
``eventType``...). The engine indexes the rules of each log type by one such field and value;
an event then meets only the rules indexed under its own values, plus the rules with no usable
constraint (which meet every event of their log type).

The index is a superset filter: a rule it names still runs its full predicate, and a rule it
leaves out provably could not match (its condition requires a value the event does not have).
Values are compared after ``casefold`` on both sides, so case-insensitive conditions (Sigma's
default, ``nocase``) and case-sensitive ones are both safe. Only string literals are indexed.

``Requirement`` is the analysis result: field key -> the set of allowed (casefolded) values,
meaning "AND over the keys, each key's value in its set". ``merge_and`` and ``merge_or`` combine
them the way conditions combine (AND keeps every key, intersecting shared ones; OR keeps only
the keys every branch constrains, uniting their values); a negation requires nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Requirement = dict[str, frozenset[str]]
ValuesGetter = Callable[[Any], Iterable[Any]]  # event -> its values of the indexed field (raw)


def merge_and(reqs: Iterable[Requirement]) -> Requirement:
    out: dict[str, frozenset[str]] = {}
    for r in reqs:
        for k, v in r.items():
            out[k] = out[k] & v if k in out else v
    return out


def merge_or(reqs: Iterable[Requirement]) -> Requirement:
    reqs = list(reqs)
    if not reqs:
        return {}
    common = set(reqs[0])
    for r in reqs[1:]:
        common &= set(r)
    return {k: frozenset().union(*(r[k] for r in reqs)) for k in common}


@dataclass(frozen=True)
class IndexKey:
    """The field a rule is indexed by: ``name`` identifies the getter (two rules with the same
    name read the field the same way), ``values`` are the casefolded values it requires."""

    name: str
    getter: ValuesGetter
    values: frozenset[str]
    text: Callable[[Any], str | None]  # an event value as the rule compares it (None: never equal)


# Field names that are usually the most selective (an action or event name) come first; fields
# with a handful of values across all events (an outcome, a category) last, whatever their count.
_PREFERRED = ("event.action", "eventname", "eventtype", "action", "event.provider", "eventsource")
_COARSE = ("event.outcome", "event.kind", "event.category", "event.type", "event.dataset", "event.module")


def choose(req: Requirement, make: Callable[[str, frozenset[str]], IndexKey | None]) -> IndexKey | None:
    """The key to index a rule by: an action or event name when the rule constrains one, else the
    constrained field with the fewest allowed values, coarse fields (outcome, category) last.
    ``make`` builds the IndexKey for a field name, or None when that field cannot be indexed."""

    def rank(item: tuple[str, frozenset[str]]) -> tuple[int, int, int, str]:
        name = item[0].rsplit(":", 1)[-1].lower()
        coarse = int(name in _COARSE)
        pref = _PREFERRED.index(name) if name in _PREFERRED else len(_PREFERRED)
        return (coarse, pref, len(item[1]), item[0])

    for name, values in sorted(req.items(), key=rank):
        key = make(name, values)
        if key is not None:
            return key
    return None


def plain_text(v: Any) -> str | None:
    """How our YAML conditions see a value for equality: strings and string enums; others never
    match a string literal."""
    if isinstance(v, str):
        return v
    val = getattr(v, "value", None)
    return val if isinstance(val, str) else None
