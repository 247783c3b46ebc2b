"""The demo generator: deterministic, parseable by the real parsers, scenarios labelled, benign clean."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from access_audit.core.records import RawRecord
from access_audit.demo import COMPANY, LOG_TYPES, SOURCES, DemoRecord, generate, write_files
from access_audit.demo.generator import SCENARIO_MIN_DAYS, TRAVELLER
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

AMS = ZoneInfo("Europe/Amsterdam")
START = datetime(2026, 11, 2, tzinfo=UTC)

EXPECTED = {
    "ssh_brute_force": ("ssh_brute_force", "ssh_invalid_user"),
    "ssh_brute_force_then_success": ("ssh_brute_force", "ssh_brute_force_then_success"),
    "ssh_root_login": ("ssh_root_login",),
    "aws_console_login_without_mfa": ("aws_console_login_without_mfa", "off_hours_personal_data"),
    "okta_mfa_deactivated": ("okta_mfa_deactivated",),
    "github_repo_made_public": ("github_repo_made_public",),
    "mailbox_forwarding_external": ("mailbox_forwarding_external",),
    "mass_export": ("mass_read_personal_data", "off_hours_personal_data"),
    "okta_brute_force": ("login_brute_force",),
    "password_spraying": ("password_spraying",),
    "credential_stuffing": ("credential_stuffing",),
    "session_hijack_abroad": ("impossible_travel", "login_from_new_country"),
    "business_trip": ("login_from_new_country",),
    "night_snooping": ("off_hours_personal_data",),
    "medical_without_need": ("special_category_need_to_know",),
    "admin_bulk_read": ("personal_data_read_anomaly",),
    "dormant_account": ("dormant_account_reused",),
    "leaver_returns": ("account_status_violation",),
    "aws_key_backdoor": ("aws_access_key_for_other_user", "privilege_granted_then_used"),
    "aws_defense_evasion": ("cloudtrail_logging_disabled", "mfa_disabled"),
    "s3_bucket_exposed": ("storage_made_public",),
    "github_owner_escalation": ("privilege_granted_then_used", "mfa_disabled"),
    "okta_admin_grant": ("privilege_granted_then_used",),
    "k8s_stolen_kubeconfig": ("k8s_secret_read_by_non_system", "k8s_pod_exec"),
    "db_dump_as_postgres": ("db_superuser_login", "db_bulk_select_personal_data"),
    "instance_credentials_stolen": ("aws_instance_credentials_outside_aws",),
    "windows_password_spray": ("windows_password_spray",),
    "entra_aitm_phishing": ("impossible_travel", "login_from_new_country"),
}
#: what a scenario expects in a window too short for a rule's learning period (under a week)
EXPECTED_SHORT = {"entra_aitm_phishing": ("impossible_travel",)}
#: the scenario that carries a record from before the window (the account's last use)
BEFORE_WINDOW = "dormant_account"


def _expected(days: int) -> set[str]:
    return {sid for sid in EXPECTED if days >= SCENARIO_MIN_DAYS.get(sid, 1)}


@pytest.fixture(scope="module")
def demo() -> tuple[list[DemoRecord], list]:
    return generate(seed=7, days=3)


@pytest.fixture(scope="module")
def records(demo):
    return demo[0]


@pytest.fixture(scope="module")
def scenarios(demo):
    return {s.id: s for s in demo[1]}


@pytest.fixture(scope="module")
def benign(records):
    return [r for r in records if r.scenario is None]


def _text(recs, **kw):
    return [r.data.decode() for r in recs if all(getattr(r, k) == v for k, v in kw.items())]


def _json(recs, log_type):
    return [(r, orjson.loads(r.data)) for r in recs if r.log_type == log_type]


# ---- shape, volume, determinism ------------------------------------------------------------

def test_volume_time_and_order() -> None:
    t = time.perf_counter()
    recs, scs = generate(seed=11, days=3)
    took = time.perf_counter() - t
    assert 20_000 <= len(recs) <= 60_000
    assert took < 10
    assert [r.timestamp for r in recs] == sorted(r.timestamp for r in recs)
    assert {r.log_type for r in recs} == set(LOG_TYPES)
    assert {r.source for r in recs} == set(SOURCES)
    for r in recs:
        assert SOURCES[r.source][1] == r.log_type
        assert b"\n" not in r.data
        assert START <= r.timestamp < START + timedelta(days=3) or r.scenario == BEFORE_WINDOW
        assert r.timestamp.tzinfo is not None and r.timestamp.utcoffset() == timedelta(0)
    assert {s.id for s in scs} == _expected(3)
    before = [r for r in recs if r.timestamp < START]  # the dormant account's last sign-in, 47 days back
    assert before and {r.scenario for r in before} == {BEFORE_WINDOW}
    assert before[-1].timestamp - before[0].timestamp < timedelta(minutes=1)


def test_same_seed_same_bytes_other_seed_other_bytes(records) -> None:
    again, _ = generate(seed=7, days=3)
    assert again == records
    other, _ = generate(seed=8, days=3)
    assert [r.data for r in other] != [r.data for r in records]
    later, _ = generate(seed=7, days=3, start=START + timedelta(days=7))
    assert min(r.timestamp for r in later if r.scenario is None) >= START + timedelta(days=7)


def test_benign_traffic_does_not_depend_on_scenarios(records) -> None:
    quiet, scs = generate(seed=7, days=3, scenarios=False)
    assert scs == []
    assert all(r.scenario is None for r in quiet)
    # GitHub events tell whether a repository is public, which a scenario changes for a while;
    # process and session numbers on the servers are shared with the attack traffic.
    def same(r: DemoRecord) -> tuple:
        return r.source, r.timestamp, re.sub(rb"\[\d+\]|session \d+|Session \d+|\bpid=\d+|\bses=\d+", b"#", r.data)

    assert [same(r) for r in quiet if r.log_type != "github.audit"] == \
        [same(r) for r in records if r.scenario is None and r.log_type != "github.audit"]


def test_other_start_across_dst_and_one_day() -> None:
    start = datetime(2027, 3, 27, 6, tzinfo=UTC)  # DST starts in Amsterdam on 28 March
    recs, scs = generate(seed=3, days=2, start=start)
    assert all(start <= r.timestamp < start + timedelta(days=2) for r in recs if r.scenario is None)
    assert {s.id for s in scs} == _expected(2)
    assert any("+02:00 " in r.data.decode()[:40] for r in recs if r.log_type == "syslog")
    _, scs1 = generate(seed=3, days=1)
    assert {s.id for s in scs1} == _expected(1)
    assert all(s.record_count > 0 for s in scs1)
    with pytest.raises(ValueError):
        generate(days=0)


# ---- every record goes through the real parsers ----------------------------------------------

@pytest.mark.parametrize("log_type", LOG_TYPES)
def test_every_record_parses(records, log_type: str) -> None:
    reg = ParserRegistry(clock=FrozenClock(START + timedelta(days=10)))
    mine = [r for r in records if r.log_type == log_type]
    assert mine
    failures: Counter[str] = Counter()
    for i, r in enumerate(mine):
        res = reg.parse(RawRecord(data=r.data, origin=f"{r.source}:{i + 1}", source=r.source, log_type=r.log_type))
        if res.dead_letters:
            failures[res.dead_letters[0].reason] += 1
            continue
        ev = res.events[0]
        if ev.timestamp != r.timestamp:
            failures[f"timestamp {ev.timestamp.isoformat()} != {r.timestamp.isoformat()}"] += 1
    assert not failures, failures.most_common(5)


def test_log_types_are_recognised_without_being_told(records) -> None:
    """``access-audit run --input DIR`` sniffs the type: every demo format must be recognised."""
    reg = ParserRegistry(clock=FrozenClock(START + timedelta(days=10)))
    wrong: Counter[tuple[str, str]] = Counter()
    per_type: Counter[str] = Counter()
    for r in records:
        if per_type[r.log_type] >= 300 and r.scenario is None:
            continue
        per_type[r.log_type] += 1
        parser, _ = reg.detect(r.data)
        if parser.name != r.log_type:
            wrong[(r.log_type, parser.name)] += 1
    assert not wrong, wrong


def test_scenario_key_events_parse_to_their_actors(records, scenarios) -> None:
    reg = ParserRegistry(clock=FrozenClock(START + timedelta(days=10)))

    def events(sid: str, needle: bytes):
        return [reg.parse(RawRecord(r.data, f"t:{i}", r.source, r.log_type)).events[0]
                for i, r in enumerate(records) if r.scenario == sid and needle in r.data]

    (login,) = events("aws_console_login_without_mfa", b'"ConsoleLogin"')
    assert (login.user.name, login.source.ip, login.event.outcome.value, login.authentication.mfa) == \
        ("akaya", "5.188.62.140", "success", False)
    (deact,) = events("okta_mfa_deactivated", b"user.mfa.factor.deactivate")
    assert (deact.event.action, deact.user.name, deact.user.target.name) == \
        ("user.mfa.factor.deactivate", "evanderlinden@zorgwijk.nl", "pvanleeuwen@zorgwijk.nl")
    public = events("github_repo_made_public", b'"visibility":"public"')
    assert [(e.event.action, e.user.name) for e in public] == [("repo.access", "tvandijk-zw")]
    reads = events("mass_export", b"GET /api/customers/")
    assert {(e.user.name, e.source.ip) for e in reads} == {("dmulder", "77.161.90.58")}
    assert len({e.url.path for e in reads}) == len(scenarios["mass_export"].subject_ids)


def test_sshd_lines_mean_what_they_say(records) -> None:
    reg = ParserRegistry(clock=FrozenClock(START + timedelta(days=10)))
    root = [r for r in records if r.scenario == "ssh_root_login" and b"Accepted" in r.data]
    ev = reg.parse(RawRecord(root[0].data, "t:1", root[0].source, "syslog")).events[0]
    assert (ev.event.action, ev.event.outcome.value, ev.user.name) == ("ssh_login", "success", "root")
    inval = next(r for r in records if r.scenario == "ssh_brute_force" and b"Failed password for invalid" in r.data)
    ev = reg.parse(RawRecord(inval.data, "t:2", inval.source, "syslog")).events[0]
    assert (ev.event.action, ev.event.outcome.value, ev.event.reason) == ("ssh_login", "failure", "invalid_user")
    assert ev.source.ip == "185.220.101.47"


# ---- scenarios ---------------------------------------------------------------------------------

def test_scenarios_are_labelled(records, scenarios) -> None:
    assert set(scenarios) == _expected(3)
    counts = Counter(r.scenario for r in records if r.scenario)
    for sid, sc in scenarios.items():
        assert sc.expected_rules == EXPECTED_SHORT.get(sid, EXPECTED[sid])
        assert sc.record_count == counts[sid] > 0
        mine = [r for r in records if r.scenario == sid]
        assert sc.start == mine[0].timestamp and sc.end == mine[-1].timestamp
        assert sc.actors and sc.description


def test_ssh_brute_force(records, scenarios) -> None:
    lines = _text(records, scenario="ssh_brute_force")
    ip = "185.220.101.47"
    fails = [x for x in lines if "Failed password for " in x and f"from {ip} " in x]
    assert 35 <= len(fails) <= 45
    assert any("Invalid user" in x for x in lines)
    assert any("Failed password for root" in x for x in lines)
    assert not any("Accepted" in x for x in lines)
    sc = scenarios["ssh_brute_force"]
    assert sc.end - sc.start < timedelta(minutes=10)
    assert ip in sc.actors


def test_ssh_brute_force_then_success(records, scenarios) -> None:
    ip = "45.141.84.126"
    lines = [x for x in _text(records, scenario="ssh_brute_force_then_success", source="demo:bastion-auth.log")
             if f"from {ip} " in x]
    fails = [i for i, x in enumerate(lines) if f"Failed password for deploy from {ip}" in x]
    ok = [i for i, x in enumerate(lines) if f"Accepted password for deploy from {ip}" in x]
    assert 12 <= len(fails) <= 18 and len(ok) == 1 and ok[0] > fails[-1]


def test_root_aws_okta_github_scenarios(records) -> None:
    assert any(re.search(r" sshd\[\d+\]: Accepted publickey for root from ", x)
               for x in _text(records, scenario="ssh_root_login"))
    logins = [o for _, o in _json([r for r in records if r.scenario == "aws_console_login_without_mfa"],
                                  "aws.cloudtrail") if o["eventName"] == "ConsoleLogin"]
    assert len(logins) == 1
    assert logins[0]["responseElements"] == {"ConsoleLogin": "Success"}
    assert logins[0]["additionalEventData"]["MFAUsed"] == "No"
    deact = [o for _, o in _json([r for r in records if r.scenario == "okta_mfa_deactivated"], "okta.system")
             if o["eventType"] == "user.mfa.factor.deactivate"]
    assert len(deact) == 1
    assert deact[0]["actor"]["alternateId"] != deact[0]["target"][0]["alternateId"]
    made_public = [o for _, o in _json([r for r in records if r.scenario == "github_repo_made_public"],
                                       "github.audit") if o.get("visibility") == "public"]
    assert len(made_public) == 1 and made_public[0]["action"] == "repo.access"
    assert made_public[0]["previous_visibility"] == "private"


_CUSTOMER = re.compile(r'^(\S+) - (\S+) \[[^\]]+\] "GET /api/customers/(\d+) HTTP')


def test_mass_export(records, scenarios) -> None:
    sc = scenarios["mass_export"]
    user, ip = sc.actors
    reads = [(r.timestamp, m) for r in records if r.scenario == "mass_export" and r.log_type == "http"
             and (m := _CUSTOMER.match(r.data.decode()))]
    ids = {m[3] for _, m in reads}
    assert 1900 <= len(ids) <= 2100
    assert ids == set(sc.subject_ids)
    assert all(m[1] == ip and m[2] == user for _, m in reads)
    assert reads[-1][0] - reads[0][0] <= timedelta(hours=1)
    assert all(not COMPANY.is_office_hours(t) and t.astimezone(AMS).hour < 6 for t, _ in reads)


# ---- benign traffic ------------------------------------------------------------------------------

def test_benign_triggers_none_of_the_rules(benign) -> None:
    syslog = _text(benign, log_type="syslog")
    assert not any(re.search(r"Accepted \S+ for root ", x) for x in syslog)
    assert not any("Invalid user" in x or "invalid user" in x for x in syslog)
    # no address fails more than twice in ten minutes
    fails: dict[str, list[datetime]] = defaultdict(list)
    for r in benign:
        if r.log_type == "syslog" and (m := re.search(r"Failed password for .* from (\S+) ", r.data.decode())):
            fails[m[1]].append(r.timestamp)
    for ts in fails.values():
        assert all(ts[i + 2] - ts[i] > timedelta(minutes=10) for i in range(len(ts) - 2))
    for _, o in _json(benign, "aws.cloudtrail"):
        if o["eventName"] == "ConsoleLogin" and o["responseElements"]["ConsoleLogin"] == "Success":
            assert o["additionalEventData"]["MFAUsed"] == "Yes"
    assert not any("mfa.factor.deactivate" in o["eventType"] for _, o in _json(benign, "okta.system"))
    assert not any(o["action"] == "repo.access" and o.get("visibility") == "public"
                   for _, o in _json(benign, "github.audit"))


def test_benign_has_near_misses(benign) -> None:
    bastion = _text(benign, source="demo:bastion-auth.log")
    typo_users = {m[1] for x in bastion if (m := re.search(r"Failed password for (\S+) from", x))}
    ok_users = {m[1] for x in bastion if (m := re.search(r"Accepted password for (\S+) from", x))}
    assert typo_users and typo_users <= ok_users
    assert any("session opened for user root(uid=0) by" in x for x in bastion)  # cron / sudo, not a login
    ct = [o for _, o in _json(benign, "aws.cloudtrail") if o["eventName"] == "ConsoleLogin"]
    assert any(o["additionalEventData"]["MFAUsed"] == "Yes" for o in ct)
    assert any(o["responseElements"]["ConsoleLogin"] == "Failure" for o in ct)
    assert any(o["action"] == "repo.access" and o["visibility"] == "internal" for _, o in _json(benign, "github.audit"))
    assert any(o["eventType"] == "user.mfa.factor.activate" for _, o in _json(benign, "okta.system"))


def test_benign_reads_stay_far_below_a_mass_export(benign) -> None:
    per_user: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for r in benign:
        if r.log_type == "http" and (m := _CUSTOMER.match(r.data.decode())) and m[2] != "-":
            per_user[m[2]].append((r.timestamp, m[3]))
    assert per_user
    worst = 0
    for reads in per_user.values():
        j = 0
        for i in range(len(reads)):
            while reads[i][0] - reads[j][0] > timedelta(hours=1):
                j += 1
            worst = max(worst, len({cid for _, cid in reads[j:i + 1]}))
    assert 50 < worst < 250  # a busy hour, not a mass export


def _human_logins(recs):
    out = []
    humans = {u.username for u in COMPANY.users}
    for r in recs:
        s = r.data.decode()
        if r.log_type == "syslog":
            m = re.search(r"Accepted \S+ for (\S+) from (\S+)", s)
            if m and m[1] in humans and not m[2].startswith("10."):
                out.append(r.timestamp)
        elif r.log_type == "okta.system":
            o = orjson.loads(r.data)
            if o["eventType"] == "user.session.start" and o["outcome"]["result"] == "SUCCESS":
                out.append(r.timestamp)
        elif r.log_type == "aws.cloudtrail":
            o = orjson.loads(r.data)
            if o["eventName"] == "ConsoleLogin" and o["responseElements"]["ConsoleLogin"] == "Success":
                out.append(r.timestamp)
    return out


def test_office_hours_distribution() -> None:
    recs, _ = generate(seed=7, days=7, scenarios=False)
    logins = _human_logins(recs)
    assert len(logins) > 100
    inside = sum(COMPANY.is_office_hours(t) for t in logins)
    assert inside / len(logins) >= 0.75
    assert inside < len(logins)  # night shift, late workers, weekends
    assert any(t.astimezone(AMS).weekday() >= 5 for t in logins)
    assert any(t.astimezone(AMS).hour >= 22 or t.astimezone(AMS).hour < 6 for t in logins)


def test_write_files(tmp_path, records) -> None:
    paths = write_files(records, tmp_path / "logs")
    assert set(paths) == set(SOURCES)
    for source, path in paths.items():
        assert path.name == SOURCES[source][0]
        lines = path.read_bytes().split(b"\n")
        assert lines[-1] == b""
        assert lines[:-1] == [r.data for r in records if r.source == source]


# ---- a week: every scenario, joiners, leavers, travel, night shifts ------------------------------

@pytest.fixture(scope="module")
def week():
    return generate(seed=7, days=7)


def test_a_week_has_a_scenario_for_every_rule_in_the_pack(week) -> None:
    from access_audit.detect.loader import load_rules

    _, scs = week
    assert {s.id: s.expected_rules for s in scs} == EXPECTED
    pack = {r.id for r in load_rules([], include_default=True).rules}
    expected = {rule for s in scs for rule in s.expected_rules}
    assert pack <= expected, f"rules no scenario exercises: {sorted(pack - expected)}"
    assert expected <= pack, f"scenarios expect rules that do not exist: {sorted(expected - pack)}"
    assert all(s.record_count > 0 and s.description for s in scs)


def _mentions(recs, *names: str):
    needles = [n.encode() for n in names]
    return [r for r in recs if any(n in r.data for n in needles)]


def test_the_leaver_is_silent_after_he_left_until_he_comes_back(week) -> None:
    recs, scs = week
    leaver = next(u for u in COMPANY.users if u.left)
    gone = datetime.combine(leaver.left, datetime.min.time(), tzinfo=UTC)  # the directory's status_since
    benign = [r for r in recs if r.scenario is None]
    mine = _mentions(benign, f" {leaver.username} ", f"for {leaver.username} ", f"user/{leaver.username}\"",
                     f'"{leaver.email}"', f'"{leaver.github}"', f'"userName":"{leaver.username}"')
    assert any(r.timestamp < gone for r in mine)  # he worked before
    assert all(r.timestamp < gone for r in mine)  # and nothing of his (or about him) after
    back = {s.id: s for s in scs}["leaver_returns"]
    assert back.start > gone
    assert any(b'"git.clone"' in r.data for r in recs if r.scenario == "leaver_returns")


def test_the_new_hire_starts_on_her_first_day(week) -> None:
    recs, _ = week
    hire = next(u for u in COMPANY.users if u.hired)
    first = datetime.combine(hire.hired, datetime.min.time(), tzinfo=AMS)
    own = [r for r in recs if r.scenario is None and (
        f" - {hire.username} [".encode() in r.data
        or (r.log_type == "okta.system" and orjson.loads(r.data)["actor"]["alternateId"] == hire.email))]
    assert own and min(r.timestamp for r in own) >= first
    onboarding = [orjson.loads(r.data) for r in recs if r.log_type == "okta.system" and hire.email.encode() in r.data
                  and r.timestamp < first]
    assert {o["eventType"] for o in onboarding} == {"user.lifecycle.create", "group.user_membership.add"}


def test_the_person_on_leave_has_no_traffic_but_the_dormant_scenario(week) -> None:
    recs, _ = week
    away = next(u for u in COMPANY.users if u.on_leave)
    assert not _mentions([r for r in recs if r.scenario is None], away.email, f" {away.username} ")
    theirs = [r.timestamp for r in recs if r.scenario == "dormant_account"]
    before = [t for t in theirs if t < START]
    assert before and max(before) < START - timedelta(days=40)  # the last use, long before the window
    assert any(t >= START for t in theirs)  # the reuse, in the window


def test_night_shifts_work_at_night(week) -> None:
    recs, _ = week
    nurse = next(u for u in COMPANY.users if u.night_shift and u.role == "support")
    reads = [r.timestamp.astimezone(AMS) for r in recs if r.scenario is None and r.log_type == "http"
             and f" - {nurse.username} [".encode() in r.data and b"/medical " in r.data]
    assert reads and all(t.hour >= 20 or t.hour < 8 for t in reads)


def test_business_trip_is_travel_at_airliner_speed(week) -> None:
    from access_audit.detect.kinds import haversine_km

    recs, _ = week
    traveller = COMPANY.user(TRAVELLER)
    trip = [orjson.loads(r.data) | {"_ts": r.timestamp} for r in recs if r.scenario == "business_trip"
            and r.log_type == "okta.system"]
    logins = [(o["_ts"], o["client"]["geographicalContext"]["geolocation"], o["client"]["ipAddress"])
              for o in trip if o["eventType"] == "user.session.start"]
    assert {ip for _, _, ip in logins} >= {"84.88.10.20", "62.57.10.20"}
    for (t0, a, _), (t1, b, _) in itertools.pairwise(logins):
        km = haversine_km(a["lat"], a["lon"], b["lat"], b["lon"])
        assert km < 500 or km / ((t1 - t0).total_seconds() / 3600) < 300
    # the traveller has no benign traffic while away: the trip is his whole presence on those days
    days = {t.astimezone(AMS).date() for t, _, _ in logins}
    assert not any(r.scenario is None and r.timestamp.astimezone(AMS).date() in days
                   for r in _mentions(recs, traveller.email, f" - {traveller.username} ["))


def test_role_change_claims_team_reads_medical_only_after_joining() -> None:
    mover = next(u for u in COMPANY.users if u.claims_from)
    recs, _ = generate(seed=7, days=3, start=datetime.combine(mover.claims_from - timedelta(days=1),
                                                                datetime.min.time(), tzinfo=UTC), scenarios=False)
    ok = [r.timestamp.astimezone(AMS).date() for r in recs if r.log_type == "http"
          and f" - {mover.username} [".encode() in r.data and b"/medical HTTP/1.1\" 200" in r.data]
    assert ok and min(ok) >= mover.claims_from


def test_a_month_of_traffic_with_every_scenario() -> None:
    # How fast it is generated is a benchmark figure (bench/), never a unit-test assertion.
    recs, scs = generate(seed=7, days=30)
    assert len(recs) > 200_000
    assert {s.id for s in scs} == set(EXPECTED)
    # people arrive and leave: the leaver's last benign record is in the first week, the new hire's first too
    assert all(r.timestamp >= START + timedelta(days=29) for r in recs[-10:])
