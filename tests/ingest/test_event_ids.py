"""Event ids of scheme 2 (docs/design/decisions.md §2): stable under rename, rotation and copy."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

from access_audit.app import ID_SCHEME_KEY, build_embedded
from access_audit.core.events import event_id
from access_audit.core.records import OccurrenceCounter, RawRecord
from access_audit.ingest.files import LineReader
from access_audit.ingest.kafka import record_from_kafka
from access_audit.ingest.memory import InMemoryBus, Message, record_from_message
from access_audit.parse.base import ParserRegistry
from access_audit.settings import Settings
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock, ListSink


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "access_audit.cli", *args], capture_output=True, timeout=300)


def run_summary(*args: str) -> dict:
    r = cli("run", "-q", *args)
    assert r.returncode == 0, r.stderr.decode()
    assert b"Traceback" not in r.stderr
    return json.loads(r.stdout)


def test_logrotate_while_appending_stores_nothing_twice(openssh_log: Path, tmp_path: Path):
    lines = openssh_log.read_bytes().splitlines(keepends=True)
    logs, dd = tmp_path / "log", str(tmp_path / "dd")
    logs.mkdir()
    auth = logs / "auth.log"
    auth.write_bytes(b"".join(lines[:1200]))
    first = run_summary("--input", str(logs), "--data-dir", dd)
    assert first["events_new"] == first["events"] >= 1180 and first["alerts_new"] > 0

    # The daemon appends, logrotate moves the file away, the daemon writes a new one.
    with auth.open("ab") as fh:
        fh.write(b"".join(lines[1200:1500]))
    auth.rename(logs / "auth.log.1")
    auth.write_bytes(b"".join(lines[1500:]))
    second = run_summary("--input", str(logs), "--data-dir", dd)
    assert second["records"] == 2000
    assert second["events_new"] == second["events"] - first["events"]  # only the 800 lines written since
    assert 780 <= second["events_new"] <= 800

    # Next rotation: auth.log.1 -> auth.log.2.gz, auth.log -> auth.log.1; and a copy elsewhere.
    with (logs / "auth.log.2.gz").open("wb") as fh:
        fh.write(gzip.compress((logs / "auth.log.1").read_bytes()))
    (logs / "auth.log.1").unlink()
    auth.rename(logs / "auth.log.1")
    shutil.copy(logs / "auth.log.1", tmp_path / "copied-auth.log")
    for args in (("--input", str(logs)), ("--input", str(tmp_path / "copied-auth.log"))):
        again = run_summary(*args, "--data-dir", dd)
        assert (again["events_new"], again["alerts_new"], again["alert_updates"]) == (0, 0, 0), again
    st = json.loads(cli("status", "--format", "json", "--data-dir", dd).stdout)
    assert st["events"]["total"] == first["events"] + second["events_new"]


def test_identical_lines_in_one_file_stay_two_events(tmp_path: Path):
    line = b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n"
    f = tmp_path / "dup.log"
    f.write_bytes(line * 3)
    recs = list(LineReader([f], year=2025))
    assert [r.occurrence for r in recs] == [0, 1, 2]
    reg = ParserRegistry(FrozenClock())
    ids = [reg.parse(r).events[0].id for r in recs]
    assert len(set(ids)) == 3
    # The same bytes under another --source-name are other events; under the same name, the same.
    named = [reg.parse(r).events[0].id for r in LineReader([f], year=2025, source_name="bastion-2")]
    assert not set(named) & set(ids)
    (tmp_path / "elsewhere.log").write_bytes(line * 3)
    assert [reg.parse(r).events[0].id for r in LineReader([tmp_path / "elsewhere.log"], year=2025)] == ids


def test_occurrence_window_is_bounded():
    c = OccurrenceCounter(window=3)
    assert [c.next("t", "", b"a"), c.next("t", "", b"a")] == [0, 1]
    for x in (b"b", b"c", b"d"):
        c.next("t", "", x)
    assert c.next("t", "", b"a") == 0  # further apart than the window: taken as the same record
    assert len(c._seen) == 3


def test_the_scheme_2_formula():
    import hashlib

    h = hashlib.blake2b(b"v2\x00sshd\x00web-1\x00raw line\x004", digest_size=16).hexdigest()
    assert event_id("web-1", "sshd", b"raw line", 4) == h
    assert event_id("web-1", "sshd", b"raw line", 4, 1) != h  # the second event of a record


def test_bus_and_kafka_records_carry_stream_and_occurrence():
    bus = InMemoryBus()
    bus.produce_record("t", RawRecord(data=b"x", origin="/a:1", source="/a", stream="s1", occurrence=7))
    bus.produce("t", b"foreign")  # no headers of ours
    a, b = bus.source("t").poll()
    assert (a.stream, a.occurrence) == ("s1", 7)
    assert (b.stream, b.occurrence) == ("bus:t/0", 1)
    assert record_from_message("t", Message(b"y", offset=5), partition=2).stream == "bus:t/2"

    class Msg:  # the attributes kafka-python's ConsumerRecord has
        def __init__(self, headers, offset=41):
            self.topic, self.partition, self.offset, self.value, self.headers = "raw", 3, offset, b"z", headers

    shipped = record_from_kafka(Msg([("aa-stream", b"fw-1"), ("aa-occ", b"2")]), {})
    assert (shipped.stream, shipped.occurrence) == ("fw-1", 2)
    foreign = record_from_kafka(Msg([]), {})
    assert (foreign.stream, foreign.occurrence) == ("kafka:raw/3", 41)


def test_a_scheme_1_store_keeps_its_ids(openssh_log: Path, tmp_path: Path):
    # A store written before scheme 2: events, no meta record.
    store = SqliteStore(tmp_path / "events.db")
    reg1 = ParserRegistry(FrozenClock(), id_scheme=1)
    recs = list(LineReader([openssh_log]))[:50]
    old = [ev for r in recs for ev in reg1.parse(r).events]
    assert old[0].id == event_id(recs[0].origin, old[0].event.dataset, recs[0].data)
    store.write_events(old)
    store.close()

    emb = build_embedded(Settings(data_dir=tmp_path), sinks=[ListSink()], clock=FrozenClock())
    assert emb.pipeline.registry.id_scheme == 1 and emb.store.get_state(ID_SCHEME_KEY) == b"1"
    bus = InMemoryBus()
    for r in recs:
        bus.produce_record("raw", r)
    st = emb.pipeline.run(bus.source("raw"))
    assert st.events == 50 and st.events_new == 0  # the replay is still recognised
    emb.store.close()

    fresh = build_embedded(Settings(data_dir=tmp_path / "new"), sinks=[], clock=FrozenClock())
    assert fresh.pipeline.registry.id_scheme == 2 and fresh.store.get_state(ID_SCHEME_KEY) == b"2"
    fresh.store.close()
