"""Load YAML rules, reporting every problem in every file with file:line (not only the first).

Rule files live in ``detectors/`` (the default pack) or anywhere given with ``--rules``. A file
holds one rule; its ``id`` must equal the file name (``ssh_brute_force.yml`` -> ``ssh_brute_force``)
so a rule is found from its alert. Duplicate ids across files are rejected. Sigma files (single
rules, multi-document files with correlations) are told apart by content and loaded by
``detect.sigma``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from access_audit.core.alerts import Severity
from access_audit.core.errors import RuleError, RuleLoadErrors
from access_audit.core.fields import known_field
from access_audit.detect.conditions import ConditionError, compile_block, required
from access_audit.detect.kinds import (
    EXTRA_KINDS,
    POLICY_CHECKS,
    AnomalyRule,
    DormantRule,
    GeoVelocityRule,
    NewTermsRule,
    OffHoursRule,
    PolicyRule,
    ValueCountRule,
)
from access_audit.detect.rules import RULE_KINDS, Rule, SequenceRule, Step, ThresholdRule, parse_duration

ALL_KINDS: dict[str, type[Rule]] = {**RULE_KINDS, **EXTRA_KINDS}

TOP_KEYS = {"id", "title", "description", "kind", "severity", "risk_score", "log_types", "tags", "mitre",
            "personal_data", "match", "threshold", "sequence", "dedup", "summary", "tests", "enabled",
            "references", "author", "false_positives", "value_count", "new_terms", "anomaly", "geo_velocity",
            "dormant", "off_hours", "policy"}


# --- YAML with line numbers -------------------------------------------------------------------

class LineDict(dict[Any, Any]):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list[Any]):
    line: int = 0


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml when built
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    d = LineDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    loader.flatten_mapping(node)
    for k_node, v_node in node.value:
        k = loader.construct_object(k_node, deep=True)
        if k in d:
            raise yaml.MarkedYAMLError("while constructing a mapping", node.start_mark,
                                       f"duplicate key {k!r}", k_node.start_mark)
        d[k] = loader.construct_object(v_node, deep=True)
        d.key_lines[k] = k_node.start_mark.line + 1
    return d


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    lst = LineList(loader.construct_object(n, deep=True) for n in node.value)
    lst.line = node.start_mark.line + 1
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)  # type: ignore[arg-type]
# YAML 1.1 would turn unquoted dates into datetimes and "no" into False; rules want strings.
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:timestamp",)]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


MAX_YAML_DEPTH = 200


def yaml_too_deep(text: str) -> bool:
    """Whether a YAML text nests deeper than any rule does. libyaml's composer recurses in C per
    level, so "[[[[..." tens of thousands deep overflows the C stack (a segfault, not an exception):
    such texts are refused before parsing. Counts flow brackets and block indentation levels."""
    depth = peak = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > peak:
                peak = depth
        elif ch in "]}":
            depth = max(0, depth - 1)
    if peak > MAX_YAML_DEPTH:
        return True
    indents = {len(line) - len(line.lstrip(" ")) for line in text.splitlines() if line.strip()}
    return len(indents) > MAX_YAML_DEPTH


def load_yaml(text: str) -> Any:
    if yaml_too_deep(text):
        raise yaml.YAMLError(f"nested more than {MAX_YAML_DEPTH} levels deep")
    return yaml.load(text, Loader=_Loader)  # safe: _Loader is a SafeLoader subclass


def _line(node: Any, key: Any = None) -> int:
    if isinstance(node, LineDict):
        if key is not None and key in node.key_lines:
            return node.key_lines[key]
        return node.line
    return getattr(node, "line", 0)


# --- building rules ---------------------------------------------------------------------------

@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


def default_rules_dir() -> Path:
    """The shipped rule pack: ``detectors/`` next to the source tree, or the installed copy."""
    here = Path(__file__).resolve()
    for cand in (here.parents[3] / "detectors", here.parents[1] / "_detectors"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("the default rule pack (detectors/) was not found")


def rule_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yml", ".yaml") and x.is_file()))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"rule path {p} does not exist")
    return out


def load_rules(paths: list[Path] | None = None, *, include_default: bool = True,
               collect_errors: bool = True) -> RuleSet:
    """Load every rule file under ``paths`` (plus the default pack).

    With ``collect_errors`` every problem lands in ``RuleSet.errors`` and broken rules are left
    out; without it the first problem raises RuleLoadErrors.
    """
    dirs = ([default_rules_dir()] if include_default else []) + list(paths or [])
    rs = RuleSet()
    seen: dict[str, str] = {}
    sigma: dict[str, Any] = {}  # shared by the Sigma files of this load (cross-file correlation references)

    def accept(rules: list[Rule], errs: list[RuleError]) -> None:
        for rule in rules:
            if rule.id in seen:
                errs.append(RuleError(f"duplicate rule id, first defined at {seen[rule.id]}",
                                      rule_id=rule.id, source=rule.source))
            else:
                seen[rule.id] = rule.source or str(f)
                rs.rules.append(rule)
        rs.errors.extend(errs)

    for f in rule_files(dirs):
        if f in rs.files:
            continue
        rs.files.append(f)
        errs: list[RuleError] = []
        accept(load_rule_file(f, errs, sigma), errs)
    if sigma:
        from access_audit.detect.sigma import finish_sigma

        errs = []
        accept(finish_sigma(sigma, errs), errs)
    if rs.errors and not collect_errors:
        raise RuleLoadErrors(rs.errors)
    return rs


def load_rule_file(path: Path, errors: list[RuleError], sigma: dict[str, Any] | None = None) -> list[Rule]:
    """The rules of one file: our YAML rule, or the Sigma rules of a Sigma file (told apart by content).

    Every problem is appended to ``errors``; a broken rule is left out. ``sigma`` is the state the
    Sigma files of one load share (see ``detect.sigma.load_sigma_file``).
    """
    try:
        text = path.read_text(encoding="utf-8")
        if yaml_too_deep(text):
            errors.append(RuleError(f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep",
                                    source=f"{path}:1"))
            return []
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        errors.append(RuleError(f"invalid YAML: {e.problem or e}", source=f"{path}:{line}"))
        return []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        errors.append(RuleError(f"cannot read: {e}", source=f"{path}:0"))
        return []
    except RecursionError:  # "[[[[..." thousands deep: the YAML parser recurses per level
        errors.append(RuleError("invalid YAML: nested too deeply", source=f"{path}:1"))
        return []
    try:
        return _rules_of(path, docs, errors, sigma)
    except (TypeError, AttributeError, OverflowError, ValueError, KeyError, RecursionError) as e:
        # A value of the wrong type where the loader expects another (found by the fuzzer: tags: true,
        # kind: [..], dedup.key: [5], dedup.window: 1e308, a Sigma id: 5): a rule problem, never a crash.
        line = _line(docs[0]) if docs else 0
        errors.append(RuleError(f"invalid rule: {type(e).__name__}: {e}", source=f"{path}:{line}"))
        return []


def _rules_of(path: Path, docs: list[Any], errors: list[RuleError], sigma: dict[str, Any] | None) -> list[Rule]:
    if any(isinstance(d, dict) and (("detection" in d and "logsource" in d) or "correlation" in d) for d in docs):
        try:
            from access_audit.detect.sigma import load_sigma_file
        except ImportError as e:  # optional dependency
            errors.append(RuleError(f"a Sigma rule file needs pySigma ({e}): pip install pysigma", source=f"{path}:1"))
            return []
        return load_sigma_file(path, errors, sigma)
    if len(docs) > 1:
        errors.append(RuleError("a rule file holds one YAML document", source=f"{path}:{_line(docs[1])}"))
        return []
    doc = docs[0] if docs else None
    if isinstance(doc, LineDict) and doc.get("kind") == "sigma_passthrough":
        return []
    rule = build_rule(doc, str(path), errors, expected_id=path.stem)
    return [rule] if rule is not None else []


def build_rule(doc: Any, file: str, errors: list[RuleError], expected_id: str | None = None) -> Rule | None:
    """Validate and compile one rule document; append every problem found to ``errors``."""
    n_before = len(errors)

    def err(msg: str, node: Any = None, key: Any = None) -> None:
        errors.append(RuleError(msg, rule_id=rid, source=f"{file}:{_line(node if node is not None else doc, key)}"))

    if not isinstance(doc, dict):
        errors.append(RuleError("a rule file must hold a mapping", source=f"{file}:1"))
        return None
    rid = doc.get("id")
    if not isinstance(rid, str) or not rid:
        rid = None
        err("missing 'id'")
    elif expected_id and rid != expected_id:
        err(f"id {rid!r} does not match the file name {expected_id!r}", doc, "id")
    for k in doc:
        if k not in TOP_KEYS:
            err(f"unknown key {k!r}; known: {', '.join(sorted(TOP_KEYS))}", doc, k)
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        err("missing 'title'")
    kind = doc.get("kind", "match")
    if kind not in ALL_KINDS:
        err(f"unknown kind {kind!r}; known: {', '.join(ALL_KINDS)}", doc, "kind")
        kind = "match"
    try:
        severity = Severity(doc.get("severity", "medium"))
    except ValueError:
        err(f"invalid severity {doc.get('severity')!r}; use one of {', '.join(s.value for s in Severity)}",
            doc, "severity")
        severity = Severity.medium
    risk = doc.get("risk_score")
    if risk is not None and (isinstance(risk, bool) or not isinstance(risk, int) or not 0 <= risk <= 100):
        err("risk_score must be an integer from 0 to 100", doc, "risk_score")
        risk = None
    log_types = doc.get("log_types", [])
    if not isinstance(log_types, list) or not all(isinstance(x, str) for x in log_types):
        err("log_types must be a list of log type names", doc, "log_types")
        log_types = []
    else:
        from access_audit.parse.base import known_log_types, parser_names

        known = known_log_types()
        for lt in log_types:
            if lt not in known:
                err(f"unknown log type {lt!r}; known: {', '.join(parser_names())}", doc, "log_types")

    def compile_here(block: Any, where: str) -> Any:
        cerrs: list[ConditionError] = []
        pred = compile_block(block, known_field, cerrs)
        for ce in cerrs:
            node = ce.node if isinstance(ce.node, LineDict) else doc.get(where.split(".")[0])
            err(f"{where}: {ce}", node, ce.key)
        return pred

    match = compile_here(doc["match"], "match") if "match" in doc else (lambda ev: True)
    if "match" not in doc and kind == "match":
        err("a match rule needs 'match'")

    dedup = doc.get("dedup", {}) or {}
    dedup_fields: list[str] = []
    suppress = timedelta(hours=1)
    if not isinstance(dedup, dict):
        err("dedup must be a mapping with 'key' and 'window'", doc, "dedup")
    else:
        dedup_fields = list(dedup.get("key", []) or [])
        for f in dedup_fields:
            if not known_field(f):
                err(f"dedup.key: unknown field {f!r}", dedup, "key")
        if "window" in dedup:
            try:
                suppress = parse_duration(dedup["window"])
            except ValueError as e:
                err(f"dedup.window: {e}", dedup, "window")

    common: dict[str, Any] = dict(
        id=rid or "?", title=str(title or rid), match=match, severity=severity,
        requires=required(doc["match"]) if "match" in doc else {},
        description=str(doc.get("description", "")).strip(), risk_score=risk,
        log_types=tuple(log_types), tags=tuple(doc.get("tags", []) or []), mitre=tuple(doc.get("mitre", []) or []),
        personal_data=bool(doc.get("personal_data", False)), dedup_fields=dedup_fields, suppress=suppress,
        summary=doc.get("summary"), source=f"{file}:{_line(doc)}",
    )

    rule: Rule | None = None
    if kind == "threshold":
        spec = doc.get("threshold")
        if not isinstance(spec, dict):
            err("a threshold rule needs 'threshold: {group_by, count, window}'")
        else:
            gb = _fields(spec.get("group_by"), "threshold.group_by", spec, err)
            cnt = spec.get("count")
            if isinstance(cnt, bool) or not isinstance(cnt, int) or cnt < 1:
                err("threshold.count must be a positive integer", spec, "count")
                cnt = 1
            win = _duration(spec.get("window"), "threshold.window", spec, err)
            wf = _weight_field(spec, err)
            rule = ThresholdRule(**common, group_by=gb, count=cnt, window=win, weight_field=wf)
            if not rule.dedup_fields:
                rule.dedup_fields = list(gb)
    elif kind == "sequence":
        spec = doc.get("sequence")
        if not isinstance(spec, dict):
            err("a sequence rule needs 'sequence: {by, window, steps}'")
        else:
            by = _fields(spec.get("by"), "sequence.by", spec, err)
            win = _duration(spec.get("window"), "sequence.window", spec, err)
            steps_doc = spec.get("steps")
            steps: list[Step] = []
            if not isinstance(steps_doc, list) or len(steps_doc) < 2:
                err("sequence.steps must list at least two steps", spec, "steps")
            else:
                for i, st in enumerate(steps_doc):
                    if not isinstance(st, dict) or "match" not in st:
                        err(f"sequence.steps[{i}] needs 'match'", st if isinstance(st, LineDict) else spec)
                        continue
                    mc = st.get("count", 1)
                    if isinstance(mc, bool) or not isinstance(mc, int) or mc < 1:
                        err(f"sequence.steps[{i}].count must be a positive integer", st, "count")
                        mc = 1
                    step_by = _fields(st["by"], f"sequence.steps[{i}].by", st, err) if "by" in st else None
                    if step_by is not None and len(step_by) != len(by):
                        err(f"sequence.steps[{i}].by must name as many fields as sequence.by", st, "by")
                    steps.append(Step(name=str(st.get("name", f"step{i + 1}")),
                                      match=compile_here(st["match"], f"sequence.steps[{i}].match"), min_count=mc,
                                      by=step_by))
            wf = _weight_field(spec, err)
            rule = SequenceRule(**common, by=by, window=win, steps=steps, weight_field=wf)
            if not rule.dedup_fields:
                rule.dedup_fields = list(by)
    elif kind in EXTRA_KINDS:
        rule = _build_extra(kind, doc, common, err)
    else:
        rule = Rule(**common)

    tests = doc.get("tests")
    if not isinstance(tests, list) or not tests:
        err("a rule needs inline 'tests' with at least one positive and one negative case")
    else:
        pos = neg = 0
        for i, t in enumerate(tests):
            if not isinstance(t, dict) or "events" not in t or "expect" not in t:
                err(f"tests[{i}] needs 'name', 'expect' and 'events'", t if isinstance(t, LineDict) else tests)
                continue
            exp = t["expect"]
            if isinstance(exp, bool):
                pos += exp
                neg += not exp
            elif isinstance(exp, int) and exp >= 0:
                pos += exp > 0
                neg += exp == 0
            else:
                err(f"tests[{i}].expect must be true, false or a number of alerts", t, "expect")
            if not isinstance(t["events"], list) or not t["events"]:
                err(f"tests[{i}].events must be a non-empty list", t, "events")
        if not pos or not neg:
            err("tests need at least one positive (expect: true) and one negative (expect: false) case",
                doc, "tests")
        if rule is not None:
            rule.tests = tests
    if len(errors) > n_before:
        return None
    return rule


def _fields(v: Any, where: str, node: Any, err: Any) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        err(f"{where} must be a field name or a list of field names", node)
        return []
    for f in v:
        if not known_field(f):
            err(f"{where}: unknown field {f!r}", node)
    return list(v)


def _duration(v: Any, where: str, node: Any, err: Any) -> timedelta:
    try:
        d = parse_duration(v)
        if d <= timedelta(0):
            raise ValueError("a window must be longer than zero")
        return d
    except ValueError as e:
        err(f"{where}: {e}", node)
        return timedelta(minutes=5)


def _weight_field(spec: dict[str, Any], err: Any) -> tuple[str, ...] | None:
    wf = spec.get("weight_field")
    if wf is None:
        return None
    if not isinstance(wf, str) or not known_field(wf):
        err(f"weight_field: unknown field {wf!r}", spec, "weight_field")
        return None
    return tuple(wf.split("."))


def _number(spec: dict[str, Any], key: str, default: float, err: Any, *, minimum: float = 0) -> float:
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum:
        err(f"{key} must be a number >= {minimum}", spec, key)
        return default
    return float(v)


def _build_extra(kind: str, doc: dict[str, Any], common: dict[str, Any], err: Any) -> Rule | None:
    """Rules of the kinds in detect.kinds, from their ``<kind>:`` block."""
    spec = doc.get(kind, {}) or {}
    if not isinstance(spec, dict):
        err(f"'{kind}' must be a mapping", doc, kind)
        return None
    where = kind + "."
    rule: Rule
    if kind == "value_count":
        gb = _fields(spec.get("group_by"), where + "group_by", spec, err)
        vf = _fields(spec.get("field"), where + "field", spec, err)
        rule = ValueCountRule(**common, group_by=gb, value_field=vf[0] if vf else "user.name",
                              count=int(_number(spec, "count", 10, err, minimum=2)),
                              window=_duration(spec.get("window"), where + "window", spec, err),
                              weight_field=_weight_field(spec, err))
        default_dedup = gb
    elif kind == "new_terms":
        kf = _fields(spec.get("key"), where + "key", spec, err)
        tf = _fields(spec.get("terms"), where + "terms", spec, err)
        rule = NewTermsRule(**common, key_fields=kf, terms=tf,
                            history=_duration(spec.get("history", "90d"), where + "history", spec, err),
                            learn=_duration(spec.get("learn", "7d"), where + "learn", spec, err))
        default_dedup = kf + tf
    elif kind == "anomaly":
        ent = _fields(spec.get("entity"), where + "entity", spec, err)
        rule = AnomalyRule(**common, entity=ent,
                           bucket=_duration(spec.get("bucket", "1h"), where + "bucket", spec, err),
                           weight_field=_weight_field(spec, err),
                           history=_duration(spec.get("history", "14d"), where + "history", spec, err),
                           warmup=_duration(spec.get("warmup", "3d"), where + "warmup", spec, err),
                           min_active_buckets=int(_number(spec, "min_active_buckets", 5, err, minimum=1)),
                           min_count=_number(spec, "min_count", 100, err),
                           factor=_number(spec, "factor", 10, err, minimum=1))
        default_dedup = ent
    elif kind == "geo_velocity":
        kf = _fields(spec.get("key", ["user.name"]), where + "key", spec, err)
        rule = GeoVelocityRule(**common, key_fields=kf, max_speed_kmh=_number(spec, "max_speed_kmh", 900, err),
                               min_distance_km=_number(spec, "min_distance_km", 500, err))
        default_dedup = kf
    elif kind == "dormant":
        kf = _fields(spec.get("key", ["user.name"]), where + "key", spec, err)
        rule = DormantRule(**common, key_fields=kf,
                           idle=_duration(spec.get("idle", "30d"), where + "idle", spec, err))
        default_dedup = kf
    elif kind == "off_hours":
        rule = OffHoursRule(**common, grace=_duration(spec.get("grace", "30m"), where + "grace", spec, err))
        default_dedup = ["user.name"]
    else:  # policy
        check = spec.get("check")
        if check not in POLICY_CHECKS:
            err(f"policy.check must be one of {', '.join(POLICY_CHECKS)}", spec or doc, "check")
            check = "need_to_know"
        unknown = spec.get("unknown_user", "alert")
        if unknown not in ("alert", "ignore"):
            err("policy.unknown_user must be alert or ignore", spec, "unknown_user")
        jf = spec.get("justification_field", "labels.justification")
        if not known_field(str(jf)):
            err(f"policy.justification_field: unknown field {jf!r}", spec, "justification_field")
        rule = PolicyRule(**common, check=check, unknown_user=unknown, justification_field=tuple(str(jf).split(".")))
        default_dedup = ["user.name"]
    if not rule.dedup_fields:
        rule.dedup_fields = list(default_dedup)
    return rule
