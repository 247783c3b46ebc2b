"""Breach cases are chained (breach/repo.py, store/chain.py kind ``case``): every case version and
every trail row, in the transaction that writes it. Edits, deletes and inserts made with SQL on
``breach.db`` behind the workflow's back are each found by verify, with their place."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from breach_helpers import CONFIG, confirmed_case, submitted_case

from access_audit.breach.repo import BreachRepo
from access_audit.breach.workflow import BreachWorkflow
from access_audit.settings import Settings
from access_audit.store.chain import load_key, verify
from access_audit.store.sqlite import SqliteStore
from access_audit.testing import FrozenClock


def _setup(tmp_path: Path) -> tuple[Settings, list[str]]:
    s = Settings(data_dir=tmp_path / "data")
    repo = BreachRepo.from_settings(s)
    wf = BreachWorkflow(repo, FrozenClock(datetime(2026, 3, 27, 9, 0, tzinfo=UTC)), CONFIG)
    ids = [submitted_case(wf).id, confirmed_case(wf, title="Laptop lost").id]
    repo.close()
    return s, ids


def _verify(s: Settings):
    store, cases = SqliteStore(s.sqlite_path), BreachRepo(s.breach_path)
    try:
        return verify(store, load_key(s.chain_key_path), s.chain_anchor_path, cases=cases)
    finally:
        store.close()
        cases.close()


def _problems(rep) -> set[tuple[str, str, str]]:
    return {(f.problem, f.kind, f.id) for f in rep.findings}


def test_a_workflow_verifies_and_every_case_version_and_trail_row_is_chained(tmp_path: Path):
    s, ids = _setup(tmp_path)
    rep = _verify(s)
    assert rep.ok, rep.findings[:3]
    db = sqlite3.connect(s.breach_path)
    n_rows = sum(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("audit", "cases"))
    db.close()
    assert rep.records == {"case": n_rows} and n_rows > 2 * len(ids)


def test_sql_edits_deletes_and_inserts_on_breach_db_are_each_found(tmp_path: Path):
    s, (first, second) = _setup(tmp_path)
    db = sqlite3.connect(s.breach_path, isolation_level=None)
    # the submission's reference rewritten in the case document; a trail row's actor changed;
    # another trail row deleted; a trail row that never happened inserted
    db.execute("UPDATE cases SET doc = replace(doc, 'M-2026-001', 'M-2026-999') WHERE id=?", (first,))
    db.execute("UPDATE audit SET actor='mallory' WHERE case_id=? AND seq=1", (first,))
    db.execute("DELETE FROM audit WHERE case_id=? AND seq=(SELECT max(seq) FROM audit WHERE case_id=?)",
               (second, second))
    last = db.execute("SELECT max(seq) FROM audit WHERE case_id=?", (first,)).fetchone()[0]
    db.execute("INSERT INTO audit SELECT case_id, ?, at_us, actor, 'approval', from_state, to_state, reason, changes"
               " FROM audit WHERE case_id=? AND seq=1", (last + 1, first))
    gone = db.execute("SELECT max(seq) FROM audit WHERE case_id=?", (second,)).fetchone()[0] + 1
    db.close()
    rep = _verify(s)
    assert not rep.ok
    assert _problems(rep) == {("altered", "case", first), ("altered", "case", f"{first}#1"),
                              ("deleted", "case", f"{second}#{gone}"), ("inserted", "case", f"{first}#{last + 1}")}
    where = {f.id: f.where for f in rep.findings}
    assert where[first] == f"breach.db cases {first}" and where[f"{first}#1"] == f"breach.db audit {first}#1"


def test_retention_of_a_case_is_chained_and_a_silent_delete_is_not(tmp_path: Path):
    s, (first, second) = _setup(tmp_path)
    repo = BreachRepo.from_settings(s)
    db = repo.db
    # retention as the repository does it for a closed case: the deletion names the case in the chain
    with repo._tx() as tx:
        tx.execute("DELETE FROM audit WHERE case_id=?", (first,))
        tx.execute("DELETE FROM cases WHERE id=?", (first,))
        repo.chain.append("retention", [], cls="cases", ids=[first], count=1)
    repo.close()
    assert _verify(s).ok
    db = sqlite3.connect(s.breach_path, isolation_level=None)
    db.execute("DELETE FROM audit WHERE case_id=?", (second,))
    db.execute("DELETE FROM cases WHERE id=?", (second,))
    db.close()
    rep = _verify(s)
    assert not rep.ok and {p for p, k, i in _problems(rep)} == {"deleted"}
    assert ("deleted", "case", second) in _problems(rep)
