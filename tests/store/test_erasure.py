"""Erasure of a data subject (GDPR Art. 17, store/erasure.py) through `access-audit erase`, on both
stores: the subject's events lose their personal data, every other event stays as it was, the
chain still verifies, putting the data back is found, and the self-audit records the erasure
without naming the subject. Real sshd lines (loghub OpenSSH_2k): the account ``fztu`` logs in
once from 119.137.62.142 (three events name it).
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import orjson
import pytest
from test_chain import cli, problems, verify

SUBJECT, ADDRESS = "fztu", "119.137.62.142"


def erase(d: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    r = cli("erase", *args, "--data-dir", str(d), env=env)
    return orjson.loads(r.stdout.decode().strip().splitlines()[-1])


def run(d: Path, log: Path, env: dict[str, str] | None = None) -> None:
    cli("run", "--input", str(log), "--year", "2025", "--data-dir", str(d), "-q", env=env)


def docs(d: Path) -> dict[str, dict]:
    c = sqlite3.connect(d / "events.db")
    out = {rid: orjson.loads(doc) for rid, doc in c.execute("SELECT id, doc FROM events")}
    c.close()
    return out


def test_sqlite_erasure_keeps_the_chain_and_leaves_nothing_readable(tmp_path: Path, openssh_log: Path) -> None:
    d = tmp_path / "data"
    run(d, openssh_log)
    before = docs(d)
    named = {rid for rid, doc in before.items() if SUBJECT in orjson.dumps(doc).decode()}
    assert len(named) == 3

    dry = erase(d, "FZTU", "--dry-run")
    assert (dry["events"], dry["chain_entry"], dry["dry_run"]) == (3, "", True)
    assert docs(d) == before  # a dry run changes nothing
    res = erase(d, "FZTU", "--request", "DSR-2026-017", "--yes")
    assert (res["events"], res["request"], res["dry_run"]) == (3, "DSR-2026-017", False)
    assert res["state_rows"] >= 1  # dormant_account_reused kept when fztu last logged in

    after = docs(d)
    assert {rid: doc for rid, doc in after.items() if rid not in named} == \
        {rid: doc for rid, doc in before.items() if rid not in named}  # nobody else's events changed
    for rid in named:
        text = orjson.dumps(after[rid]).decode()
        assert SUBJECT not in text.lower() and ADDRESS not in text, text
        assert after[rid]["user"]["name"].startswith("erased-") and after[rid]["event"]["original"] == "[erased]"
        assert after[rid]["event"]["action"] == before[rid]["event"]["action"]  # what happened stays
        geo = (after[rid].get("source") or {}).get("geo") or {}
        assert "city_name" not in geo and "location" not in geo  # where they were: the country at most
    tokens = {after[rid]["user"]["name"] for rid in named}
    assert len(tokens) == 1  # still one (unnamed) person across their events
    # nor in the CIDR index (the packed address of the column ip_key follows source.ip)
    keyed = sqlite3.connect(d / "events.db")
    assert [k for (i, k) in keyed.execute("SELECT id, ip_key FROM events") if i in named] == [None] * len(named)
    assert keyed.execute("SELECT count(*) FROM events WHERE ip_key IS NOT NULL").fetchone()[0] > 0
    keyed.close()
    # Not in the file either: secure_delete and the checkpoint leave no old copy in free pages.
    raw = (d / "events.db").read_bytes() + ((d / "events.db-wal").read_bytes() if (d / "events.db-wal").exists()
                                            else b"")
    assert raw.count(SUBJECT.encode()) == 0

    code, rep = verify(d)
    assert code == 0 and rep["ok"] and rep["records"]["event"] == 2000, rep["findings"][:5]
    c = sqlite3.connect(d / "events.db", isolation_level=None)
    audit = [orjson.loads(doc) for (doc,) in c.execute("SELECT doc FROM self_audit")]
    [rec] = [a for a in audit if a["action"] == "erasure"]
    assert rec["hits"] == 3 and rec["erasure_request"] == "DSR-2026-017" and rec["interface"] == "cli"
    assert SUBJECT not in orjson.dumps(rec).decode().lower()

    again = erase(d, SUBJECT, "--yes")  # done: a second request finds nothing
    assert (again["events"], again["state_rows"], again["chain_entry"]) == (0, 0, "")

    # Putting the personal data back behind the application's back is found.
    back = sorted(named)[0]
    c.execute("UPDATE events SET doc = ? WHERE id = ?", (orjson.dumps(before[back]).decode(), back))
    c.close()
    code, rep = verify(d)
    assert code == 1 and problems(rep) == {("altered", "event", back)}


@pytest.mark.integration
def test_elasticsearch_erasure_keeps_the_chain(es_url: str, tmp_path: Path, openssh_log: Path) -> None:
    from elasticsearch import Elasticsearch

    prefix = f"aa-erase-{uuid.uuid4().hex[:8]}"
    env = {"ACCESS_AUDIT_STORE": "elasticsearch", "ACCESS_AUDIT_ELASTICSEARCH_URL": es_url,
           "ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX": prefix}
    d = tmp_path / "data"
    es = Elasticsearch(es_url, request_timeout=30)
    try:
        run(d, openssh_log, env)

        def named() -> list[dict]:
            es.indices.refresh(index=f"{prefix}-events-*")
            q = {"bool": {"should": [{"term": {"user.name": SUBJECT}}, {"term": {"related.user": SUBJECT}}]}}
            return es.search(index=f"{prefix}-events-*", query=q, size=100)["hits"]["hits"]

        hits = named()
        assert len(hits) == 3
        res = erase(d, SUBJECT, "--request", "DSR-2026-018", "--yes", env=env)
        assert res["events"] == 3 and named() == []
        for h in hits:
            src = es.get(index=h["_index"], id=h["_id"])["_source"]
            assert SUBJECT not in orjson.dumps(src).decode() and ADDRESS not in orjson.dumps(src).decode()
        code, rep = verify(d, env=env)
        assert code == 0 and rep["records"]["event"] == 2000, rep["findings"][:5]
        es.indices.refresh(index=f"{prefix}-self-audit*")
        audit = es.search(index=f"{prefix}-self-audit*", query={"term": {"action": "erasure"}})["hits"]["hits"]
        assert len(audit) == 1 and SUBJECT not in orjson.dumps(audit[0]["_source"]).decode()

        h = hits[0]
        es.index(index=h["_index"], id=h["_id"], document=h["_source"], refresh=True)  # the data put back
        code, rep = verify(d, env=env)
        assert code == 1 and problems(rep) == {("altered", "event", h["_id"])}
    finally:
        es.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        es.close()
