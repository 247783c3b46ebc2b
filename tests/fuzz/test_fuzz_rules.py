"""The rule loader, fuzzed: our YAML rules and SigmaHQ rules, mutated as YAML text and as
structures. Property: loading returns rules and problems (each with file:line), never raises,
never hangs; a problem never takes down the other rules of a load.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from gen import mutate_bytes, mutate_obj
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_rule_regressions import known_crash

from access_audit.core.errors import RuleError
from access_audit.detect.loader import default_rules_dir, load_rule_file
from access_audit.detect.sigma import finish_sigma

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
RULES = settings(max_examples=150, deadline=10_000)  # pySigma is slow to build a rule; still bounded

OURS = sorted(default_rules_dir().glob("*.yml"))


@pytest.fixture(scope="module")
def sigma_files(datasets: Path) -> list[Path]:
    files = sorted((datasets / "sigmahq" / "rules").rglob("*.yml"))
    assert len(files) > 100
    return files[::4]  # a spread over every folder, kept small for CI


def load_text(tmp: Path, name: str, text: bytes) -> tuple[list[Any], list[RuleError]]:
    path = tmp / name
    path.write_bytes(text)
    errors: list[RuleError] = []
    state: dict[str, Any] = {}
    try:
        rules = load_rule_file(path, errors, state)
        rules += finish_sigma(state, errors)
    except Exception as e:
        if known_crash(e):  # a crash class already recorded in test_rule_regressions.py
            return [], []
        raise
    for e in errors:
        assert e.source and ":" in e.source and e.message, f"a problem says where and what: {e!r}"
    return rules, errors


def _dump(doc: Any) -> bytes:
    try:
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")
    except yaml.YAMLError:
        return b"{"


@RULES
@given(rng=st.randoms(use_true_random=False))
def test_our_rules_mutated_as_structures(tmp_path_factory: pytest.TempPathFactory, rng: random.Random) -> None:
    f = rng.choice(OURS)
    doc = yaml.safe_load(f.read_text())
    for _ in range(rng.randint(1, 3)):
        doc = mutate_obj(rng, doc)
    load_text(tmp_path_factory.getbasetemp(), f.name, _dump(doc))


@RULES
@given(rng=st.randoms(use_true_random=False))
def test_our_rules_mutated_as_text(tmp_path_factory: pytest.TempPathFactory, rng: random.Random) -> None:
    f = rng.choice(OURS)
    load_text(tmp_path_factory.getbasetemp(), f.name, mutate_bytes(rng, f.read_bytes()))


@RULES
@given(rng=st.randoms(use_true_random=False))
def test_sigma_rules_mutated(tmp_path_factory: pytest.TempPathFactory, sigma_files: list[Path],
                             rng: random.Random) -> None:
    f = rng.choice(sigma_files)
    if rng.random() < 0.5:
        docs = list(yaml.safe_load_all(f.read_text()))
        text = b"---\n".join(_dump(mutate_obj(rng, d) if rng.random() < 0.8 else d) for d in docs)
    else:
        text = mutate_bytes(rng, f.read_bytes())
    load_text(tmp_path_factory.getbasetemp(), "sigma_" + f.name, text)


@settings(max_examples=100)
@given(text=st.binary(max_size=300))
def test_random_bytes_as_a_rule_file(tmp_path_factory: pytest.TempPathFactory, text: bytes) -> None:
    load_text(tmp_path_factory.getbasetemp(), "random.yml", text)


def test_unmutated_rules_load_clean(tmp_path: Path) -> None:
    """The property is not vacuous: the originals load without a problem."""
    for f in OURS:
        rules, errors = load_text(tmp_path, f.name, f.read_bytes())
        assert rules and not errors, (f, errors)


def test_yaml_bombs_are_refused_or_bounded(tmp_path: Path) -> None:
    import time

    bomb = b'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + b"".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    for text in (bomb, b"[" * 50_000, b"a:\n" + b"  " * 10_000 + b"b: 1\n"):
        t0 = time.perf_counter()
        load_text(tmp_path, "bomb.yml", text)
        assert time.perf_counter() - t0 < 30  # 12 s seen on a loaded 2-core machine; unbounded would be hours
