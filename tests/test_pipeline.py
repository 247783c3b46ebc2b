"""The embedded pipeline end to end: file -> in-process bus -> parse -> SQLite -> rules -> alerts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from access_audit.app import build_embedded
from access_audit.ingest.files import LineReader
from access_audit.ingest.memory import InMemoryBus
from access_audit.settings import Settings
from access_audit.testing import FrozenClock, ListSink


def run_file(path: Path, data_dir: Path, sink: ListSink | None = None, **reader_kw):
    sink = sink or ListSink()
    emb = build_embedded(Settings(data_dir=data_dir), sinks=[sink], clock=FrozenClock())
    bus = InMemoryBus()
    for rec in LineReader([path], **reader_kw):
        bus.produce_record("raw", rec)
    stats = emb.pipeline.run(bus.source("raw"), batch_size=300)
    return emb, stats, sink


def test_openssh_sample_end_to_end(openssh_log: Path, tmp_path: Path):
    emb, stats, sink = run_file(openssh_log, tmp_path)
    assert stats.records == 2000
    assert stats.events + stats.dead_letters == stats.records  # nothing lost
    assert stats.events >= 0.99 * stats.records
    st = emb.store.stats()
    assert st["events"]["total"] == stats.events and st["dead_letters"]["total"] == stats.dead_letters

    brute = {a.source_ip: a for a in emb.store.alerts(rule_id="ssh_brute_force", limit=1000)}
    # The attacking addresses of the sample, by their number of failed password lines.
    for ip in ("183.62.140.253", "187.141.143.180", "103.99.0.122", "112.95.230.3"):
        assert ip in brute, sorted(brute)
    assert brute["183.62.140.253"].count >= 100  # one alert with a counter, not hundreds
    assert len(sink.new) == st["alerts"]["total"]
    assert all(a.first_seen.year == 2025 for a in sink.new)  # event time (Dec 10, inferred year)
    emb.store.close()


def test_replay_adds_nothing(openssh_log: Path, tmp_path: Path):
    emb1, _, sink1 = run_file(openssh_log, tmp_path)
    before = emb1.store.stats()
    emb1.store.close()
    emb2, s2, sink2 = run_file(openssh_log, tmp_path)
    assert s2.events_new == 0
    after = emb2.store.stats()
    assert after == before
    assert sink1.new and sink2.new == [] and sink2.updates == []  # history does not alert again
    emb2.store.close()


def test_garbage_goes_to_dead_letters_with_reason(tmp_path: Path):
    f = tmp_path / "mixed.log"
    f.write_bytes(
        b"Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\r\n"
        b"\x00\x01\x02\xff\xfe binary junk\r\n"
        b'{"truncated": \r\n'
        b"\r\n"
        b"Dec 10 06:55:47 LabSZ sshd[24200]: Connection closed by 173.234.31.186 [preauth]")
    emb, stats, _ = run_file(f, tmp_path / "d")
    assert (stats.records, stats.events, stats.dead_letters) == (4, 2, 2)
    reasons = sorted(d["reason"] for d in emb.store.dead_letters())
    assert reasons[0].startswith("invalid JSON") and reasons[1] == "unrecognised format: no parser recognises this line"
    assert {d["origin"].rsplit(":", 1)[1] for d in emb.store.dead_letters()} == {"2", "3"}
    emb.store.close()


def cli(*args: str, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "access_audit.cli", *args], input=stdin, capture_output=True,
                          cwd=cwd, timeout=300)


def test_cli_run_query_status(openssh_log: Path, tmp_path: Path):
    dd = str(tmp_path / "dd")
    r = cli("run", "--input", str(openssh_log), "--data-dir", dd)
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(r.stdout)
    assert summary["records"] == 2000 and summary["events"] >= 1980
    assert b"ssh_brute_force" in r.stderr
    lines = (tmp_path / "dd" / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == summary["alerts_new"] and all(json.loads(x)["rule_id"] for x in lines)

    r = cli("query", "--data-dir", dd, "--user", "fztu", "--action", "ssh_login", "--outcome", "success",
            "--format", "json")
    assert r.returncode == 0, r.stderr.decode()
    (hit,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert hit["source"]["ip"] == "119.137.62.142" and hit["event"]["action"] == "ssh_login"

    r = cli("query", "source.ip:183.62.140.0/24 AND event.action:ssh_login", "--data-dir", dd, "--limit", "5",
            "--format", "csv")
    rows = r.stdout.decode().splitlines()
    assert rows[0].startswith("@timestamp,log_type,action") and len(rows) == 6

    r = cli("query", "user.nam:x", "--data-dir", dd)
    assert r.returncode == 2 and b"unknown field 'user.nam'" in r.stderr

    r = cli("status", "--format", "json", "--data-dir", dd)
    st = json.loads(r.stdout)
    assert st["events"]["total"] == summary["events"]
    assert st["alerts"]["by_rule"]["ssh_brute_force"]["alerts"] >= 4


def test_cli_reads_stdin_and_rejects_unknown_log_type(tmp_path: Path):
    line = b"Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for root from 119.4.203.64 port 2191 ssh2\n"
    r = cli("run", "--data-dir", str(tmp_path), "--year", "2024", stdin=line)
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout)["events"] == 1 and b"ssh_root_login" in r.stderr
    r = cli("run", "--data-dir", str(tmp_path), "--log-type", "nope", stdin=line)
    assert r.returncode == 2 and b"unknown log type" in r.stderr


@pytest.mark.parametrize("cmd", [["detectors", "lint"], ["detectors", "test"]])
def test_cli_detectors_commands_pass_on_the_pack(cmd):
    r = cli(*cmd)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def run_files(paths: list[Path], data_dir: Path):
    emb = build_embedded(Settings(data_dir=data_dir), sinks=[ListSink()], clock=FrozenClock())
    for p in paths:
        bus = InMemoryBus()
        for rec in LineReader([p], year=2025):
            bus.produce_record("raw", rec)
        emb.pipeline.run(bus.source("raw"), batch_size=300)
    alerts = sorted((x.id, x.rule_id, x.dedup_key, x.count) for x in emb.store.alerts(limit=10_000))
    emb.store.close()
    return alerts


def test_restart_keeps_rule_state_and_open_alerts(openssh_log: Path, tmp_path: Path):
    """A log processed in two runs (a restart in the middle) raises exactly what one run raises."""
    lines = openssh_log.read_bytes().split(b"\n")
    # Split in the middle of a brute-force burst, so that a threshold window straddles the restart.
    burst = [i for i in range(1000, len(lines)) if b"Failed password" in lines[i] and b"183.62.140.253" in lines[i]]
    cut = burst[5]  # five failures of the burst before the restart, the rest after
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"\n".join(lines[:cut]))
    b.write_bytes(b"\n".join(lines[cut:]))
    one_run = run_files([a, b], tmp_path / "one")
    run_files([a], tmp_path / "restarted")
    restarted = run_files([b], tmp_path / "restarted")
    assert restarted == one_run
    # Without the checkpoint the second half alone counts differently: the state mattered.
    fresh = {x[0]: x[3] for x in run_files([b], tmp_path / "fresh")}
    assert any(fresh.get(i) != n for i, *_, n in one_run if i in fresh) or set(fresh) - {x[0] for x in one_run}


def test_a_failed_checkpoint_does_not_stop_the_pipeline(openssh_log: Path, tmp_path: Path, caplog):
    from access_audit.core.errors import StoreUnavailableError

    emb = build_embedded(Settings(data_dir=tmp_path), sinks=[ListSink()], clock=FrozenClock())

    def down(upserts, deletes):
        raise StoreUnavailableError("elasticsearch: cannot write state: 503")

    emb.store.write_state = down  # the store goes away between a commit and the checkpoint
    bus = InMemoryBus()
    for rec in LineReader([openssh_log]):
        bus.produce_record("raw", rec)
    stats = emb.pipeline.run(bus.source("raw"), batch_size=300)
    assert stats.events == 2000
    assert "rule state not checkpointed" in caplog.text
    emb.store.close()
