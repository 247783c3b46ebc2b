"""Tamper evidence (store/chain.py): a real run stores and chains; then records are edited,
deleted and inserted behind the application's back (SQL on the SQLite file, direct writes to the
Elasticsearch indices) and ``access-audit verify`` must find each one, with its place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
JUNK = b"\x00\xff not a log line\n"


def cli(*args: str, env: dict[str, str] | None = None, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run([sys.executable, "-m", "access_audit.cli", *args], capture_output=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr.decode()[-3000:]
    return r


def verify(data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    r = cli("verify", "--data-dir", str(data_dir), "--format", "json", *extra, env=env, ok=False)
    assert r.returncode in (0, 1), r.stderr.decode()[-3000:]
    return r.returncode, json.loads(r.stdout.decode().strip().splitlines()[-1])


def problems(rep: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["problem"], f["kind"], f["id"]) for f in rep["findings"]}


@pytest.fixture
def run_dir(tmp_path: Path, openssh_log: Path) -> Path:
    """2,000 real sshd lines and a junk line through `access-audit run`: events, alerts, a dead letter."""
    junk = tmp_path / "junk.log"
    junk.write_bytes(JUNK)
    d = tmp_path / "data"
    r = cli("run", "--input", str(openssh_log), "--input", str(junk), "--year", "2025", "--data-dir", str(d), "-q",
            ok=False)
    # junk.log is all junk: the run says so and exits 1 (issue 14), and still stores everything else
    assert r.returncode == 1 and b"became a dead letter" in r.stderr, r.stderr.decode()[-3000:]
    return d


def db(d: Path) -> sqlite3.Connection:
    return sqlite3.connect(d / "events.db", isolation_level=None)


def test_a_clean_run_verifies_and_a_replay_and_a_second_writer_keep_it_verified(run_dir: Path, openssh_log: Path):
    code, rep = verify(run_dir)
    assert code == 0 and rep["ok"], rep["findings"][:5]
    assert rep["records"]["event"] == 2000 and rep["records"]["dead_letter"] == 1 and rep["records"]["alert"] > 0
    # The same file again (a replay: nothing new) and another file by a second writer.
    cli("run", "--input", str(openssh_log), "--year", "2025", "--data-dir", str(run_dir), "-q")
    code, rep2 = verify(run_dir)
    assert code == 0 and rep2["records"] == rep["records"] and rep2["writers"] == rep["writers"]
    other = run_dir.parent / "other.log"
    other.write_bytes(b"".join(openssh_log.read_bytes().splitlines(keepends=True)[:100]).replace(b"LabSZ", b"web-2"))
    cli("run", "--input", str(other), "--year", "2025", "--data-dir", str(run_dir), "-q")
    code, rep3 = verify(run_dir)
    assert code == 0 and rep3["records"]["event"] == 2100 and rep3["writers"] == rep["writers"] + 1


def test_sql_edits_deletes_and_inserts_are_each_found_with_their_place(run_dir: Path):
    c = db(run_dir)
    (a_id, a_doc), (d_id,) = c.execute("SELECT id, doc FROM events ORDER BY ts_us LIMIT 1").fetchone(), \
        c.execute("SELECT id FROM events ORDER BY ts_us DESC LIMIT 1").fetchone()
    doc = orjson.loads(a_doc)
    doc["user"] = {"name": "someone-else"}
    c.execute("UPDATE events SET doc=? WHERE id=?", (orjson.dumps(doc).decode(), a_id))  # altered
    c.execute("DELETE FROM events WHERE id=?", (d_id,))  # deleted
    fake = {**doc, "event": {**doc["event"], "id": "f" * 32}}
    c.execute("INSERT INTO events (id, ts_us, doc) VALUES (?, ?, ?)", ("f" * 32, 1, orjson.dumps(fake).decode()))
    al_id, al_doc = c.execute("SELECT id, doc FROM alerts LIMIT 1").fetchone()
    ad = orjson.loads(al_doc)
    ad["status"] = "false_positive"  # someone closes an alert without the API
    c.execute("UPDATE alerts SET doc=? WHERE id=?", (orjson.dumps(ad).decode(), al_id))
    c.execute("UPDATE dead_letters SET reason='fine' WHERE 1")
    dl_id = c.execute("SELECT id FROM dead_letters").fetchone()[0]
    c.close()
    code, rep = verify(run_dir)
    assert code == 1
    assert problems(rep) == {("altered", "event", a_id), ("deleted", "event", d_id), ("inserted", "event", "f" * 32),
                             ("altered", "alert", al_id), ("altered", "dead_letter", dl_id)}
    where = {f["id"]: f for f in rep["findings"]}
    assert where[a_id]["where"].startswith("events rowid ") and "/" in where[a_id]["chain"]
    assert where[d_id]["where"].startswith("day ")


def test_chain_entries_altered_removed_or_forged_are_found(run_dir: Path):
    c = db(run_dir)
    rows = c.execute("SELECT writer, seq, entry FROM chain ORDER BY seq").fetchall()
    assert len(rows) >= 3
    w, seq, text = rows[1]
    e = orjson.loads(text)
    e["items"] = e["items"][1:]  # hide a record from the chain ...
    c.execute("UPDATE chain SET entry=? WHERE writer=? AND seq=?", (orjson.dumps(e).decode(), w, seq))
    c.execute("DELETE FROM chain WHERE writer=? AND seq=?", (w, rows[-1][1]))  # ... and truncate the chain
    forged = {**orjson.loads(rows[0][2]), "seq": 999, "items": [["a" * 32, "0" * 32, 0]]}
    c.execute("INSERT INTO chain VALUES (?, 999, 0, 'event', ?)", (w, orjson.dumps(forged).decode()))
    c.close()
    code, rep = verify(run_dir)
    kinds = {(f["problem"], f["id"]) for f in rep["findings"]}
    assert code == 1
    assert ("chain_altered", f"{w}/{seq}") in kinds
    assert ("chain_missing", f"{w}/{rows[-1][1]}") in kinds
    assert ("chain_altered", f"{w}/999") in kinds or ("chain_forged", f"{w}/999") in kinds


def test_retention_is_recorded_and_a_silent_delete_is_not(tmp_path: Path, run_dir: Path, openssh_log: Path):
    from access_audit.app import open_store
    from access_audit.settings import Settings
    from access_audit.store.chain import on_day_deleted

    next_day = tmp_path / "next-day.log"
    lines = openssh_log.read_bytes().splitlines(keepends=True)[:200]
    next_day.write_bytes(b"".join(lines).replace(b"Dec 10", b"Dec 11"))
    cli("run", "--input", str(next_day), "--year", "2025", "--data-dir", str(run_dir), "-q")
    c = db(run_dir)
    days = [r[0] for r in c.execute("SELECT DISTINCT ts_us / 86400000000 FROM events ORDER BY 1")]
    assert len(days) >= 2
    c.close()
    s = Settings(data_dir=run_dir)
    store = open_store(s)
    # Retention as the retention module does it: delete a whole day, then the hook.
    d0 = days[0]
    with store.inner._lock:
        n = store.inner.db.execute("DELETE FROM events WHERE ts_us / 86400000000 = ?", (d0,)).rowcount
    on_day_deleted("events", date.fromordinal(date(1970, 1, 1).toordinal() + d0), n)
    store.close()
    code, rep = verify(run_dir)
    assert code == 0, rep["findings"][:3]
    # The next day deleted behind the application's back: every record of it is reported.
    c = db(run_dir)
    gone = [r[0] for r in c.execute("SELECT id FROM events WHERE ts_us / 86400000000 = ?", (days[1],))]
    c.execute("DELETE FROM events WHERE ts_us / 86400000000 = ?", (days[1],))
    c.close()
    code, rep = verify(run_dir)
    assert code == 1 and problems(rep) == {("deleted", "event", i) for i in gone}


def test_verify_since_limits_the_records_checked(run_dir: Path):
    c = db(run_dir)
    first_id, = c.execute("SELECT id FROM events ORDER BY ts_us LIMIT 1").fetchone()
    c.execute("DELETE FROM events WHERE id=?", (first_id,))
    last_ts, = c.execute("SELECT max(ts_us) FROM events").fetchone()
    c.close()
    assert verify(run_dir)[0] == 1
    since = datetime.fromtimestamp(last_ts / 1e6 - 3600, UTC).isoformat()
    code, rep = verify(run_dir, "--since", since)
    assert code == 0 and 0 < rep["records"]["event"] < 2000


def test_a_missing_anchor_line_or_a_foreign_key_fails(run_dir: Path, tmp_path: Path):
    anchor = run_dir / "chain-anchor.jsonl"
    lines = anchor.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3
    other = tmp_path / "other.key"
    other.write_text("not-the-key")
    code, rep = verify(run_dir, env={"ACCESS_AUDIT_CHAIN_KEY_FILE": str(other)})
    assert code == 1 and {f["problem"] for f in rep["findings"]} >= {"chain_forged"}


# --- Elasticsearch -----------------------------------------------------------------------------------

@pytest.mark.integration
def test_direct_writes_to_the_elasticsearch_indices_are_found(es_url: str, tmp_path: Path, openssh_log: Path):
    from elasticsearch import Elasticsearch

    prefix = f"aa-chain-{uuid.uuid4().hex[:8]}"
    env = {"ACCESS_AUDIT_STORE": "elasticsearch", "ACCESS_AUDIT_ELASTICSEARCH_URL": es_url,
           "ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX": prefix}
    d = tmp_path / "data"
    es = Elasticsearch(es_url, request_timeout=30)
    try:
        cli("run", "--input", str(openssh_log), "--year", "2025", "--data-dir", str(d), "-q", env=env)
        code, rep = verify(d, env=env)
        assert code == 0 and rep["records"]["event"] == 2000, rep["findings"][:5]
        es.indices.refresh(index=f"{prefix}-*")
        hits = es.search(index=f"{prefix}-events-*", size=2, sort=[{"@timestamp": "asc"}])["hits"]["hits"]
        edited, deleted = hits
        src = {**edited["_source"], "message": "nothing to see here"}
        es.index(index=edited["_index"], id=edited["_id"], document=src)  # altered
        es.delete(index=deleted["_index"], id=deleted["_id"])  # deleted
        es.index(index=edited["_index"], id="e" * 32, document={**src, "event": {"id": "e" * 32}})  # inserted
        alert = es.search(index=f"{prefix}-alerts", size=1)["hits"]["hits"][0]
        doc = {**alert["_source"], "count": alert["_source"]["count"] + 1}
        es.index(index=f"{prefix}-alerts", id=alert["_id"], document=doc,
                 version=10_000, version_type="external")  # rewritten past the versioning
        es.indices.refresh(index=f"{prefix}-*")
        code, rep = verify(d, env=env)
        assert code == 1
        assert problems(rep) == {("altered", "event", edited["_id"]), ("deleted", "event", deleted["_id"]),
                                 ("inserted", "event", "e" * 32), ("altered", "alert", alert["_id"])}
        where = {f["id"]: f["where"] for f in rep["findings"]}
        assert where[edited["_id"]] == f"{edited['_index']}/{edited['_id']}"
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        es.close()


def test_the_self_audit_is_on_the_chain(tmp_path: Path):
    """Issue 12: the self-audit is append-only in the store (triggers) and chained, so an edit, a
    delete or an insert made past the triggers is found; retention of a whole day verifies."""
    from access_audit.api.audit import SelfAudit
    from access_audit.app import open_store
    from access_audit.settings import Settings

    d = tmp_path / "data"
    store = open_store(Settings(data_dir=d))
    recs = [SelfAudit(store).record(actor="fenna", role="dpo", action="search", query=f"user.name:u{i}",
                                    token_id="t1") for i in range(3)]
    store.close()
    code, rep = verify(d)
    assert code == 0 and rep["records"]["self_audit"] == 3, rep["findings"][:3]

    c = db(d)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the first line of defence
        c.execute("UPDATE self_audit SET actor = 'x' WHERE id = ?", (recs[0]["id"],))
    c.execute("DROP TRIGGER self_audit_append_only")
    c.execute("DROP TRIGGER self_audit_whole_days")
    c.execute("UPDATE self_audit SET doc = ? WHERE id = ?",
              (orjson.dumps({**recs[0], "actor": "someone-else"}).decode(), recs[0]["id"]))
    c.execute("DELETE FROM self_audit WHERE id = ?", (recs[1]["id"],))
    forged = {**recs[2], "id": uuid.uuid4().hex, "query": "user.name:nobody"}
    c.execute("INSERT INTO self_audit (id, ts_us, day, actor, doc) SELECT ?, ts_us, day, actor, ? FROM self_audit"
              " WHERE id = ?", (forged["id"], orjson.dumps(forged).decode(), recs[2]["id"]))
    c.close()
    code, rep = verify(d)
    assert code == 1 and problems(rep) == {("altered", "self_audit", recs[0]["id"]),
                                           ("deleted", "self_audit", recs[1]["id"]),
                                           ("inserted", "self_audit", forged["id"])}

    store = open_store(Settings(data_dir=d))  # retention deletes the whole day, and the chain says so
    day = datetime.fromisoformat(recs[0]["@timestamp"]).astimezone(UTC).date()
    assert store.delete_day("self_audit", day) == 3
    store.close()
    code, rep = verify(d)
    assert code == 0, rep["findings"][:3]
