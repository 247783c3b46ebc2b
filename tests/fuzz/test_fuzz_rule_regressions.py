"""Rule-loader crashes the fuzzer found (tests/fuzz/test_fuzz_rules.py, bench). Each input must load
as a rule problem with file:line, not raise. They sit in ``detect/`` and ``core/fields.py``, which
the engine rewrite owns; the loader now reports each as a rule problem (these tests pin that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from access_audit.core.errors import RuleError
from access_audit.detect.loader import default_rules_dir, load_rule_file
from access_audit.detect.sigma import finish_sigma

SIGMA = """title: Root CA added
id: {id}
status: test
logsource: {{product: aws, service: cloudtrail}}
detection:
  sel: {{eventName: CreateCertificate}}
  condition: sel
level: high
"""


def _ours(name: str, **change: Any) -> str:
    doc = yaml.safe_load((default_rules_dir() / name).read_text())
    doc.update(change)
    return yaml.safe_dump(doc, sort_keys=False)


# (what crashes, where it crashes, file name, text) -- one entry per crash class.
KNOWN: list[tuple[str, str, str, str]] = [
    ("TypeError", "build_rule", "ssh_root_login.yml", _ours("ssh_root_login.yml", tags=True)),
    ("TypeError", "build_rule", "ssh_root_login.yml", _ours("ssh_root_login.yml", kind=["match"])),
    ("AttributeError", "known_field", "ssh_root_login.yml", _ours("ssh_root_login.yml", dedup={"key": [5]})),
    ("OverflowError", "parse_duration", "ssh_root_login.yml", _ours("ssh_root_login.yml", dedup={"window": 1e308})),
    ("AttributeError", "load_sigma_file", "sigma_ca.yml", SIGMA.format(id=5)),
    ("RecursionError", "load_rule_file", "deep.yml", "[" * 5000),  # PyYAML recurses per nesting level
]


def load(tmp: Path, name: str, text: str) -> list[RuleError]:
    p = tmp / name
    p.write_text(text)
    errors: list[RuleError] = []
    state: dict[str, Any] = {}
    load_rule_file(p, errors, state)
    finish_sigma(state, errors)
    return errors


def known_crash(e: BaseException) -> bool:
    """Whether an exception out of the loader is one of the crash classes above (by type and the
    innermost access_audit function it passed through)."""
    import traceback

    funcs = [f.name for f in traceback.extract_tb(e.__traceback__) if "access_audit" in f.filename]
    return any(type(e).__name__ == t and where in funcs for t, where, _, _ in KNOWN)


@pytest.mark.parametrize(("exc", "where", "name", "text"), KNOWN, ids=[f"{k[0]}-{k[1]}-{i}" for i, k in
                                                                          enumerate(KNOWN)])
def test_loader_reports_instead_of_raising(tmp_path: Path, exc: str, where: str, name: str, text: str) -> None:
    errors = load(tmp_path, name, text)
    assert errors and all(e.source for e in errors)
