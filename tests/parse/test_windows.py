"""Windows Security logon events (``windows.security``) on the real samples.

Every expected count is computed from the sample files (their ``EventID`` / ``Channel`` values),
not from the parser:

* otrf_windows_security, 8 files (NXLog and the 2021+ export shape): every line is a 4624, 4625,
  4634, 4647, 4648 or 4672 and parses, by log type and auto-detected (665 in all).
* msticpy ``host_logons.from_pkl.jsonl`` (25 Sentinel ``SecurityEvent`` 4624 rows without
  ``Channel``), ``failed_logons.from_pkl.jsonl`` (4 x 4625), ``host_logons.csv`` (14 x 4624, the
  CSV rows read as the file reader reads them: one object per row keyed by the header).
* otrf_goldensaml ``WindowsEvents.json``: the Security-channel rows with a parsed id (28 x 4624,
  5 x 4662) parse; the AD FS Security-channel rows (412, 501) are ``no events`` dead letters
  naming the EventID; the Sysmon / firewall rows are not claimed by this parser.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord
from access_audit.parse import ParserRegistry
from access_audit.parse.windows import EVENTS

OTRF_FILES = [
    "cmd_psh_stop_netprofm_eventlog_before_reboot.logon_events.jsonl",
    "covenant_psremoting_grunt_2019-12-05014931.logon_events.jsonl",
    "empire_persistence_registry_modification_run_keys_standard_user_2020-09-04030609.logon_events.jsonl",
    "empire_shell_rubeus_asktgt_createnetonly_2020-09-21230246.logon_events.jsonl",
    "metasploit_comsvcs_lsass_memory_dump.logon_events.jsonl",
    "proxylogon_ssrf_rce_poc_2021-03-14T01401970.logon_events.jsonl",
    "purplesharp_ad_playbook_I_2020-10-22042947.logon_events.jsonl",
    "rdp_interactive_taskmanager_lsass_dump_2020-09-22043748.logon_events.jsonl",
]


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def parse(registry: ParserRegistry, rec: dict[str, Any] | bytes, log_type: str | None = None
          ) -> AccessEvent | DeadLetter:
    data = rec if isinstance(rec, bytes) else orjson.dumps(rec)
    res = registry.parse(RawRecord(data=data, origin="t:1", source="t", log_type=log_type))
    assert len(res.events) + len(res.dead_letters) == 1
    return res.events[0] if res.events else res.dead_letters[0]


def check_all(registry: ParserRegistry, rows: list[dict[str, Any]]) -> list[AccessEvent]:
    """Each row parses by log type and auto-detected, to the same event; action and outcome by id."""
    out = []
    for row in rows:
        typed = parse(registry, row, "windows.security")
        auto = parse(registry, row)
        assert isinstance(typed, AccessEvent), typed
        assert isinstance(auto, AccessEvent) and auto.id == typed.id and auto.event.dataset == "windows.security"
        action, category, _, outcome = EVENTS[int(row["EventID"])]
        assert (typed.event.action, typed.event.category, typed.event.outcome) == (action, [category], outcome)
        assert typed.labels["winlog_event_id"] == str(row["EventID"])
        out.append(typed)
    return out


@pytest.mark.parametrize("name", OTRF_FILES)
def test_every_otrf_sample_file(datasets, registry, name):
    raw_lines = [x for x in (datasets / "otrf_windows_security" / name).read_bytes().splitlines() if x.strip()]
    rows = [json.loads(x) for x in raw_lines]
    assert rows and all(r["Channel"].lower() == "security" and r["EventID"] in EVENTS for r in rows)
    events = check_all(registry, rows)
    assert len(events) == len(rows)
    for row, ev in zip(rows, events, strict=True):
        assert ev.host.name == row["Hostname"]
        assert ev.timestamp.isoformat().startswith(row["@timestamp"][:19])
        if "TargetUserName" in row and row["EventID"] != 4648:
            assert ev.user is not None and ev.user.name == row["TargetUserName"]
        if row.get("LogonType"):
            assert ev.labels["winlog_logon_type_code"] == row["LogonType"]
        ip = row.get("IpAddress")
        if ip and ip != "-":
            assert ev.source.ip == ip  # loopback ::1 kept
        else:
            assert ev.source is None or ev.source.ip is None


def test_otrf_totals_match_the_provenance(datasets, registry):
    assert sorted(p.name for p in (datasets / "otrf_windows_security").glob("*.jsonl")) == OTRF_FILES
    by_id: Counter[int] = Counter()
    for name in OTRF_FILES:
        by_id.update(r["EventID"] for r in jsonl(datasets / "otrf_windows_security" / name))
    assert sum(by_id.values()) == 665 and by_id[4625] == 12 and by_id[4647] == 1


def test_password_spray_failures_name_the_wrong_password(datasets, registry):
    rows = [r for r in jsonl(datasets / "otrf_windows_security" / OTRF_FILES[6]) if r["EventID"] == 4625]
    events = check_all(registry, rows)
    assert len(events) == len(rows) == 7
    assert {e.user.name for e in events} == {r["TargetUserName"] for r in rows}
    for ev in events:
        assert ev.event.outcome is Outcome.failure and ev.event.reason == "wrong password"
        assert ev.labels["winlog_sub_status"] == "0xc000006a" and ev.labels["winlog_logon_type"] == "Interactive"
        assert ev.user.id is None  # the NULL SID S-1-0-0 of a failed logon is no identity


def test_explicit_credentials_and_special_privileges(datasets, registry):
    rows = jsonl(datasets / "otrf_windows_security" / OTRF_FILES[0])
    explicit = next(r for r in rows if r["EventID"] == 4648)
    ev = check_all(registry, [explicit])[0]
    assert ev.user.name == explicit["SubjectUserName"] and ev.user.target.name == explicit["TargetUserName"]
    assert ev.resource.type == "host" and ev.resource.name == explicit["TargetServerName"]
    assert ev.process.name == "consent.exe" and ev.process.pid == int(explicit["ProcessId"], 16)
    assert ev.source.ip == "::1"
    special = next(r for r in rows if r["EventID"] == 4672)
    ev = check_all(registry, [special])[0]
    assert ev.user.name == special["SubjectUserName"] and ev.user.id == special["SubjectUserSid"]
    assert ev.event.type == ["admin"] and "SeDebugPrivilege" in ev.labels["winlog_privileges"]


def test_msticpy_sentinel_rows(datasets, registry):
    d = datasets / "msticpy_testdata"
    logons = jsonl(d / "host_logons.from_pkl.jsonl")
    failed = jsonl(d / "failed_logons.from_pkl.jsonl")
    assert all("Channel" not in r for r in logons + failed)  # recognised by id and account fields
    ok = check_all(registry, logons)
    assert len(ok) == len(logons) == sum(r["EventID"] == 4624 for r in logons)
    ntlm = [e for e, r in zip(ok, logons, strict=True) if r["IpAddress"] == "131.107.147.209"]
    assert ntlm and all(e.source.domain == "IANHELLE-DEV17" and e.authentication.method == "ntlm" for e in ntlm)
    assert all(e.host.name == "MSTICAlertsWin1" and e.resource.name == "MSTICAlertsWin1" for e in ok)
    bad = check_all(registry, failed)
    assert len(bad) == len(failed) == sum(r["EventID"] == 4625 for r in failed)
    reasons = Counter(e.event.reason for e in bad)
    want = Counter({"0xc000015b": "logon type not granted", "0xc000006d": "bad user name or password"}[r["Status"]]
                   for r in failed)
    assert reasons == want


def test_msticpy_csv_rows(datasets, registry):
    with (datasets / "msticpy_testdata" / "host_logons.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    events = check_all(registry, rows)
    assert len(events) == len(rows) == 14
    assert [e.labels["winlog_logon_type_code"] for e in events] == [r["LogonType"] for r in rows]


def test_goldensaml_security_events(datasets, registry):
    rows = jsonl(datasets / "otrf_goldensaml_azure_m365" / "WindowsEvents.json")
    ours = [r for r in rows if r.get("Channel") == "Security"]
    parsed = [r for r in ours if r["EventID"] in EVENTS]
    others = [r for r in ours if r["EventID"] not in EVENTS]
    assert len(parsed) == 33 and {r["EventID"] for r in others} == {412, 501}
    events = check_all(registry, parsed)
    reads = [e for e, r in zip(events, parsed, strict=True) if r["EventID"] == 4662]
    assert len(reads) == sum(r["EventID"] == 4662 for r in parsed)
    for ev in reads:
        assert ev.user.name == "wardog" and ev.resource.type == "ds_object" and ev.resource.owner == "DS"
        assert ev.resource.id.startswith("%{") and ev.labels["winlog_access_mask"] == "0x10"
    for r in others:
        dl = parse(registry, r)
        assert isinstance(dl, DeadLetter) and dl.log_type == "windows.security"
        assert "no events" in dl.reason and f"EventID={r['EventID']}" in dl.reason
    for r in (r for r in rows if r.get("Channel") != "Security"):
        got = parse(registry, r)
        assert not (isinstance(got, AccessEvent) and got.event.dataset == "windows.security")


def test_object_access_4663_documented_shape(parse_one):
    rec = {"EventID": 4663, "Channel": "Security", "Computer": "FS01", "TimeCreated": "2026-11-20T10:00:00Z",
           "SubjectUserName": "alice", "SubjectDomainName": "CORP", "SubjectUserSid": "S-1-5-21-1-2-3-1104",
           "SubjectLogonId": "0x3e7ab", "ObjectServer": "Security", "ObjectType": "File",
           "ObjectName": "C:\\Shares\\HR\\salaries.xlsx", "AccessMask": "0x1", "ProcessId": "0x1f4",
           "ProcessName": "C:\\Windows\\explorer.exe"}
    ev = parse_one(rec)
    assert isinstance(ev, AccessEvent) and ev.event.dataset == "windows.security"
    assert (ev.event.action, ev.event.category, ev.event.type) == ("object-access-attempt", ["file"], ["access"])
    assert ev.resource.type == "file" and ev.resource.name == rec["ObjectName"] == ev.resource.id
    assert (ev.user.name, ev.user.domain, ev.user.id) == ("alice", "CORP", "S-1-5-21-1-2-3-1104")
    assert ev.process.name == "explorer.exe" and ev.process.pid == 500 and ev.labels["winlog_logon_id"] == "0x3e7ab"


BASE = {"EventID": 4624, "Channel": "Security", "Computer": "WS1", "TimeCreated": "2026-11-20T10:00:00Z",
        "TargetUserName": "bob", "LogonType": "3", "IpAddress": "10.0.0.9", "IpPort": "5000"}


@pytest.mark.parametrize(("change", "names"), [
    ({"EventID": 4688}, "EventID=4688"),
    ({"EventID": "x"}, "EventID='x'"),
    ({"TimeCreated": "yesterday"}, "TimeCreated"),
    ({"TimeCreated": None}, "TimeGenerated"),
    ({"LogonType": "network"}, "LogonType='network'"),
    ({"IpPort": "http"}, "IpPort='http'"),
    ({"TargetUserName": ["bob"]}, "TargetUserName is list"),
    ({"EventID": 4663, "ObjectName": "-"}, "ObjectName is absent"),
])
def test_broken_records_are_dead_letters_naming_the_field(parse_one, change, names):
    rec = {**BASE, **change}
    for log_type in (None, "windows.security"):
        got = parse_one(rec, log_type)
        assert isinstance(got, DeadLetter) and names in got.reason and got.log_type == "windows.security", got


def test_missing_event_id_named_when_typed(parse_one):
    rec = {k: v for k, v in BASE.items() if k != "EventID"}
    got = parse_one(rec, "windows.security")
    assert isinstance(got, DeadLetter) and "EventID is absent" in got.reason


def test_same_record_twice_gives_the_same_id(parse_one):
    a, b = parse_one(BASE), parse_one(BASE)
    assert isinstance(a, AccessEvent) and a.id == b.id and a.source.port == 5000
