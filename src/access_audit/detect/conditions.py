"""Field conditions of YAML rules, compiled once into plain predicates.

A condition block is a mapping. Each key is an ECS field path (AND of all keys) or a combinator:

    match:
      event.action: ssh_login              # equals (a list value on the event: any element)
      event.outcome: [failure, unknown]    # in
      source.ip: {not: {cidr: [10.0.0.0/8, 192.168.0.0/16]}}
      user.name: {startswith: svc-, nocase: true}
      any:                                 # OR of blocks
        - {labels.visibility: public}
        - {event.action: {regex: "^repo\\.(create|access)$"}}
      not: {user.name: {in: [backup]}}     # negation of a block

Operators: equals, in, contains, startswith, endswith, regex, cidr, exists, gt, gte, lt, lte, not;
``same_as``/``differs_from`` compare with another field of the same event (both must be present);
``nocase: true`` compares strings case-insensitively. Several operators in one mapping are ANDed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from access_audit.core.events import AccessEvent
from access_audit.core.fields import accessor
from access_audit.detect.prefilter import Requirement, merge_and, merge_or

Predicate = Callable[[AccessEvent], bool]

OPERATORS = {"equals", "in", "contains", "startswith", "endswith", "regex", "cidr", "exists",
             "gt", "gte", "lt", "lte", "not", "nocase", "same_as", "differs_from"}
COMBINATORS = {"all", "any", "not"}


class ConditionError(ValueError):
    """A condition is malformed; ``path`` locates it inside the rule (for file:line lookup)."""

    def __init__(self, message: str, node: Any = None, key: Any = None) -> None:
        super().__init__(message)
        self.node = node
        self.key = key  # the key inside ``node`` that is wrong, when known


def _values(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, list):
        return v
    return [v]


def _norm(v: Any, nocase: bool) -> Any:
    if isinstance(v, bool):
        return v
    if hasattr(v, "value") and isinstance(v.value, str):  # enums
        v = v.value
    if nocase and isinstance(v, str):
        return v.casefold()
    return v


def _scalar_eq(expected: Any, nocase: bool) -> Callable[[Any], bool]:
    if isinstance(expected, bool):
        return lambda v: v is expected
    if isinstance(expected, (int, float)):
        def num_eq(v: Any) -> bool:
            if isinstance(v, bool):
                return False
            if isinstance(v, (int, float)):
                return v == expected
            try:
                return float(v) == expected
            except (TypeError, ValueError):
                return False
        return num_eq
    if nocase:
        exp = str(expected).casefold()
        return lambda v: _norm(v if isinstance(v, str) else str(getattr(v, "value", v)), True) == exp
    exp_s = str(expected)
    # Hot path: plain string equality (StrEnum values are str too).
    return lambda v: v == exp_s if isinstance(v, str) else str(getattr(v, "value", v)) == exp_s


def _in_strings(values: set[str]) -> Callable[[Any], bool]:
    def test(v: Any) -> bool:
        if isinstance(v, str):
            return str.__str__(v) in values
        return str(getattr(v, "value", v)) in values
    return test


def _compile_op(op: str, arg: Any, nocase: bool, node: Any) -> Callable[[Any], bool]:
    """A test of one (scalar) field value."""
    if op == "equals":
        return _scalar_eq(arg, nocase)
    if op == "in":
        if not isinstance(arg, list) or not arg:
            raise ConditionError("'in' needs a non-empty list", node)
        tests = [_scalar_eq(a, nocase) for a in arg]
        if not nocase and all(isinstance(a, str) for a in arg):
            return _in_strings(set(arg))
        return lambda v: any(t(v) for t in tests)
    if op in ("contains", "startswith", "endswith"):
        needles = [_norm(str(a), nocase) for a in _values(arg)]
        if not needles:
            raise ConditionError(f"'{op}' needs a string or a list of strings", node)
        if op == "contains":
            return lambda v: isinstance(v, str) and any(n in _norm(v, nocase) for n in needles)
        if op == "startswith":
            t = tuple(needles)
            return lambda v: isinstance(v, str) and _norm(v, nocase).startswith(t)
        t2 = tuple(needles)
        return lambda v: isinstance(v, str) and _norm(v, nocase).endswith(t2)
    if op == "regex":
        try:
            rxs = [re.compile(str(a), re.I if nocase else 0) for a in _values(arg)]
        except re.error as e:
            raise ConditionError(f"invalid regex: {e}", node) from None
        return lambda v: isinstance(v, str) and any(r.search(v) for r in rxs)
    if op == "cidr":
        try:
            nets = [ipaddress.ip_network(str(a), strict=False) for a in _values(arg)]
        except ValueError as e:
            raise ConditionError(f"invalid cidr: {e}", node) from None

        def in_nets(v: Any) -> bool:
            if not isinstance(v, str):
                return False
            try:
                ip = ipaddress.ip_address(v)
            except ValueError:
                return False
            return any(ip in n for n in nets if n.version == ip.version)
        return in_nets
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(arg, bool) or not isinstance(arg, (int, float)):
            raise ConditionError(f"'{op}' needs a number", node)
        cmp = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}[op]

        def num(v: Any) -> bool:
            if isinstance(v, bool):
                return False
            try:
                return cmp(float(v), float(arg))
            except (TypeError, ValueError):
                return False
        return num
    raise ConditionError(f"unknown operator {op!r}; known: {', '.join(sorted(OPERATORS))}", node)


def compile_field(path: str, spec: Any) -> Predicate:
    """Compile the condition on one field into a predicate of the event."""
    parts = tuple(path.split("."))
    get = accessor(path)
    if isinstance(spec, dict):
        nocase = bool(spec.get("nocase", False))
        tests: list[Callable[[Any], bool]] = []
        exists: bool | None = None
        negs: list[Predicate] = []
        for op, arg in spec.items():
            if op == "nocase":
                continue
            if op in ("same_as", "differs_from"):
                negs.append(_field_compare(parts, str(arg), op == "same_as", nocase, spec))
                continue
            if op == "exists":
                if not isinstance(arg, bool):
                    raise ConditionError("'exists' takes true or false", spec)
                exists = arg
            elif op == "not":
                negs.append(compile_field(path, arg))
            else:
                tests.append(_compile_op(op, arg, nocase, spec))
        if not tests and exists is None and not negs:
            raise ConditionError(f"no operator for field {path!r}", spec)

        def pred(ev: AccessEvent) -> bool:
            v = get(ev)
            if exists is not None:
                present = v is not None and v != [] and v != ""
                if present != exists:
                    return False
            if tests:
                vals = _values(v)
                if not all(any(t(x) for x in vals) for t in tests):
                    return False
            return all(not n(ev) for n in negs)
        return pred
    if isinstance(spec, list):
        if not spec:
            raise ConditionError(f"empty list for field {path!r}", spec)
        test = _compile_op("in", spec, False, spec)
    else:
        test = _compile_op("equals", spec, False, spec)

    def simple(ev: AccessEvent) -> bool:
        v = get(ev)
        if isinstance(v, list):
            return any(test(x) for x in v)
        return v is not None and test(v)
    return simple


def _field_compare(parts: tuple[str, ...], other: str, same: bool, nocase: bool, node: Any) -> Predicate:
    """A predicate that is True when the comparison FAILS (it is used as a negated test)."""
    if not other or other.startswith(".") or other.endswith("."):
        raise ConditionError(f"'{'same_as' if same else 'differs_from'}' needs a field name", node)
    mine, theirs = accessor(".".join(parts)), accessor(other)

    def fails(ev: AccessEvent) -> bool:
        a, b = mine(ev), theirs(ev)
        if a is None or b is None:
            return True
        eq = _norm(a, nocase) == _norm(b, nocase)
        return eq != same
    return fails


def compile_block(block: Any, known_field: Callable[[str], bool] | None = None,
                  errors: list[ConditionError] | None = None) -> Predicate:
    """Compile a condition block (mapping) into a predicate.

    With ``errors`` given, problems are collected there (every one, not only the first) and a
    never-matching predicate stands in for the broken part; without it, the first one raises.
    """
    def fail(err: ConditionError) -> Predicate:
        if errors is None:
            raise err
        errors.append(err)
        return lambda ev: False

    if not isinstance(block, dict) or not block:
        return fail(ConditionError("a condition block must be a non-empty mapping", block))
    preds: list[Predicate] = []
    for key, spec in block.items():
        if key in ("all", "any"):
            if not isinstance(spec, list) or not spec:
                preds.append(fail(ConditionError(f"'{key}' needs a non-empty list of blocks", block)))
                continue
            subs = [compile_block(b, known_field, errors) for b in spec]
            if key == "all":
                preds.append(lambda ev, s=subs: all(p(ev) for p in s))  # type: ignore[misc]
            else:
                preds.append(lambda ev, s=subs: any(p(ev) for p in s))  # type: ignore[misc]
        elif key == "not":
            sub = compile_block(spec, known_field, errors)
            preds.append(lambda ev, s=sub: not s(ev))  # type: ignore[misc]
        else:
            if not isinstance(key, str):
                preds.append(fail(ConditionError(f"field name must be a string, got {key!r}", block)))
                continue
            if known_field is not None and not known_field(key):
                preds.append(fail(ConditionError(f"unknown field {key!r}", block, key)))
                continue
            try:
                preds.append(compile_field(key, spec))
            except ConditionError as e:
                if e.node is None or not hasattr(e.node, "key_lines"):
                    e.node, e.key = block, key
                preds.append(fail(e))
    if len(preds) == 1:
        return preds[0]
    return lambda ev: all(p(ev) for p in preds)


def required(block: Any) -> Requirement:
    """The literal string equalities a condition block requires (for the dispatch index, see
    ``detect.prefilter``): ``{"ecs:<path>": casefolded values}``. Only what every matching event
    must satisfy is returned; anything else (operators, negations, numbers) requires nothing."""
    if not isinstance(block, dict):
        return {}
    parts: list[Requirement] = []
    for key, spec in block.items():
        if key == "all" and isinstance(spec, list):
            parts.append(merge_and(required(b) for b in spec))
        elif key == "any" and isinstance(spec, list) and spec:
            parts.append(merge_or(required(b) for b in spec))
        elif key == "not" or not isinstance(key, str):
            continue
        else:
            vals = _required_values(spec)
            if vals is not None:
                parts.append({f"ecs:{key}": vals})
    return merge_and(parts)


def _required_values(spec: Any) -> frozenset[str] | None:
    if isinstance(spec, dict):
        out = None
        for op in ("equals", "in"):
            if op in spec:
                v = _required_values(spec[op])
                if v is not None:
                    out = v if out is None else out & v
        return out
    values = spec if isinstance(spec, list) else [spec]
    if not values or not all(isinstance(v, str) for v in values):
        return None
    return frozenset(v.casefold() for v in values)


def yaml_text(v: Any) -> str | None:
    """An event value as YAML equality compares it (``_scalar_eq``: strings, else ``str(value)``)."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return str(getattr(v, "value", v))
