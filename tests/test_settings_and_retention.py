from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from access_audit.core.errors import ConfigError
from access_audit.core.events import AccessEvent
from access_audit.settings import Settings
from access_audit.store.query import Query
from access_audit.store.sqlite import SqliteStore


def test_config_file_keys_with_the_environment_winning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = tmp_path / "access-audit.yml"
    cfg.write_text('slack_channel: "#from-file"\ndata_dir: /from/file\nkafka_topics: [a, b]\n')
    monkeypatch.setenv("ACCESS_AUDIT_CONFIG", str(cfg))
    monkeypatch.setenv("ACCESS_AUDIT_DATA_DIR", str(tmp_path / "env"))
    s = Settings()
    assert (s.slack_channel, s.data_dir, s.kafka_topics) == ("#from-file", tmp_path / "env", ["a", "b"])
    monkeypatch.setenv("ACCESS_AUDIT_CONFIG", str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError, match="no such config file"):
        Settings()


def test_retention_deletes_only_old_events(tmp_path: Path):
    now = datetime.now(UTC)
    store = SqliteStore(tmp_path / "events.db")
    evs = [AccessEvent.model_validate({"@timestamp": now - timedelta(days=d), "event": {"id": f"e{d}"}})
           for d in (1, 10, 400)]
    store.write_events(evs)
    store.close()
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", "retention", "--days", "30", "--data-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"retention_days": 30, "deleted_events": 1}
    store = SqliteStore(tmp_path / "events.db")
    assert sorted(e.id for e in store.search(Query())) == ["e1", "e10"]
    store.close()
