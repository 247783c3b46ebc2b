"""The config loader (``ACCESS_AUDIT_CONFIG``, YAML), fuzzed: mutated and random config files.

Property: ``Settings()`` either loads or raises a clear error naming the problem (pydantic's
ValidationError lists the key; YAML errors give the line; a missing file is named), never
anything else, never hangs.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from gen import NASTY, mutate_bytes, mutate_obj
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from access_audit.core.errors import ConfigError
from access_audit.settings import CONFIG_ENV, Settings

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BASE: dict[str, Any] = {
    "data_dir": "/tmp/aa", "store": "elasticsearch", "bus": "kafka", "batch_size": 500, "geoip": False,
    "kafka_bootstrap_servers": "127.0.0.1:9092", "kafka_topics": ["access-audit.raw"],
    "kafka_topic_log_types": {"access-audit.raw": "syslog"}, "retention_days": 365, "slack_channel": "#sec",
    "org_timezone": "Europe/Amsterdam", "rules": ["/tmp/rules"],
    "elasticsearch_url": "http://127.0.0.1:9200", "elasticsearch_index_prefix": "access-audit",
}
CLEAR = (ValidationError, ConfigError, yaml.YAMLError, FileNotFoundError, ValueError)


def load(tmp: Path, text: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp / "config.yml"
    path.write_bytes(text)
    monkeypatch.setenv(CONFIG_ENV, str(path))
    for k in list(os.environ):
        if k.startswith("ACCESS_AUDIT_") and k != CONFIG_ENV:
            monkeypatch.delenv(k)
    try:
        s = Settings()
    except CLEAR as e:
        assert str(e).strip(), "the error says what is wrong"
        return
    assert s.batch_size >= 1 and s.store in ("sqlite", "elasticsearch")


def test_the_base_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.yml").write_text(yaml.safe_dump(BASE))
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config.yml"))
    assert Settings().store == "elasticsearch"


@given(rng=st.randoms(use_true_random=False))
def test_mutated_configs(tmp_path_factory: pytest.TempPathFactory, rng: random.Random) -> None:
    doc: Any = dict(BASE)
    for _ in range(rng.randint(1, 4)):
        doc = mutate_obj(rng, doc)
    if isinstance(doc, dict) and rng.random() < 0.3:
        doc[rng.choice(list(BASE))] = rng.choice(NASTY)
    try:
        text = yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")
    except yaml.YAMLError:
        text = b"{"
    if rng.random() < 0.3:
        text = mutate_bytes(rng, text)
    with pytest.MonkeyPatch.context() as mp:
        load(tmp_path_factory.getbasetemp(), text, mp)


@given(text=st.binary(max_size=200))
def test_random_bytes_as_config(tmp_path_factory: pytest.TempPathFactory, text: bytes) -> None:
    with pytest.MonkeyPatch.context() as mp:
        load(tmp_path_factory.getbasetemp(), text, mp)


@pytest.mark.parametrize("text", [b"1", b"- a\n- b\n", b"just text", b"\xff\xfe\x00", b"a: [\n", b"[" * 5000])
def test_regressions_config_that_is_not_a_mapping_is_a_config_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: bytes) -> None:
    """Found by the fuzzer: a scalar or list file raised TypeError inside pydantic-settings."""
    (tmp_path / "config.yml").write_bytes(text)
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config.yml"))
    with pytest.raises(ConfigError, match=r"config\.yml"):
        Settings()
