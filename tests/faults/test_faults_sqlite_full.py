"""The embedded store's disk fills up mid-run (SQLITE_FULL, made real with ``PRAGMA max_page_count``
on the store's own connection): a clear error, nothing acknowledged that was not stored, and a
rerun stores the rest, nothing twice, with the chain still verifying.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from access_audit.app import build_embedded
from access_audit.ingest.files import LineReader
from access_audit.ingest.memory import InMemoryBus
from access_audit.settings import Settings
from access_audit.store.chain import load_key, verify
from access_audit.store.sqlite import SqliteStore, StoreFullError
from access_audit.testing import ListSink


def feed(settings: Settings, files: list[Path], max_pages: int | None = None) -> tuple[object, int]:
    """`access-audit run` in-process; returns (the error raised or None, events acknowledged)."""
    emb = build_embedded(settings, sinks=[ListSink()])
    if max_pages is not None:
        emb.store.inner.db.execute(f"PRAGMA max_page_count = {max_pages}")
    bus = InMemoryBus()
    source = bus.source("raw")
    records = iter(LineReader(files, year=2025))
    error = None
    try:
        while chunk := list(islice(records, 200)):
            for rec in chunk:
                bus.produce_record("raw", rec)
            emb.pipeline.run(source, batch_size=200)
    except StoreFullError as e:
        error = e
    acked = emb.pipeline.stats.events_new
    emb.store.close()
    return error, acked


def expected_events(path: Path) -> int:
    from access_audit.core.records import RawRecord
    from access_audit.parse import ParserRegistry

    reg = ParserRegistry()
    return sum(len(reg.parse(RawRecord(r.data, r.origin, r.source, r.log_type, 2025)).events)
               for r in LineReader([path], year=2025))


def count(settings: Settings) -> int:
    import sqlite3

    with sqlite3.connect(settings.sqlite_path) as c:
        return int(c.execute("SELECT count(*) FROM events").fetchone()[0])


def test_disk_full_is_a_clear_error_acknowledges_nothing_unstored_and_resumes(tmp_path: Path, openssh_log: Path):
    s = Settings(data_dir=tmp_path / "data", geoip=False)
    _, first = feed(s, [openssh_log], max_pages=None)  # create the file and learn its size
    assert first == 2000
    import sqlite3

    with sqlite3.connect(s.sqlite_path) as c:
        size_pages = int(c.execute("PRAGMA page_count").fetchone()[0])
    other = tmp_path / "more.log"
    other.write_bytes(openssh_log.read_bytes().replace(b"LabSZ", b"web-2") * 3)  # 6,000 new lines
    n_ev = expected_events(other)
    assert n_ev > 5900
    err, acked = feed(s, [other], max_pages=size_pages * 2)  # room for about 2,000 more
    assert isinstance(err, StoreFullError)
    msg = str(err)
    assert "is full" in msg and "Nothing of this batch was stored" in msg and "run again" in msg
    stored = count(s)
    assert 0 < acked < n_ev and stored == 2000 + acked, "acknowledged exactly what was stored"
    # Space again: the rerun resumes, stores the rest, doubles nothing.
    err2, acked2 = feed(s, [other])
    assert err2 is None and (acked2, count(s)) == (n_ev - acked, 2000 + n_ev)
    store = SqliteStore(s.sqlite_path)
    rep = verify(store, load_key(s.chain_key_path), s.chain_anchor_path)
    store.close()
    assert rep.ok, rep.findings[:5]


@pytest.fixture(autouse=True)
def _no_geoip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCESS_AUDIT_GEOIP", "false")
