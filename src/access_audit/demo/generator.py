"""Deterministic raw access-log traffic of a small company, with injected attacks and ground truth.

The company is Zorgwijk BV, a small Dutch health-insurance firm (30 people). The generator writes
what its systems would really log, in their real formats, so a demo runs the real parsers:

* ``syslog``: OpenSSH/PAM/sudo/cron lines from the bastion, db-01 and app-01, in rsyslog's
  RFC 3339 format (Debian 12's default), local time with offset: ``2026-11-02T09:13:01.123456+01:00``;
* ``http``: the CRM's nginx combined log with the authenticated user (personal and medical data);
* ``aws.cloudtrail``: CloudTrail records, one JSON object per line;
* ``okta.system``: Okta System Log events;
* ``github.audit``: GitHub organisation audit-log events;
* ``kubernetes.audit``: the production cluster's API server audit log (``audit.k8s.io/v1``,
  level Metadata, RequestReceived omitted by the policy): controllers and kubelets at work, and
  engineers looking at pods and logs in office hours.
* ``windows.security``: the office laptops' Security log (4624/4625/4634), forwarded by the
  Windows Event Collector through NXLog as one JSON object per event (the OTRF shape);
* ``postgresql.pgaudit``: the CRM database's PostgreSQL server log on db-01 (``log_line_prefix =
  '%m [%p] %q%u@%d '``, ``log_connections = on``, pgAudit ``READ, ROLE, MISC`` for the people's
  roles; the application's own role is not audited: ``ALTER ROLE crm_app SET pgaudit.log = 'none'``);
* ``azure.signinlogs``: Microsoft Entra ID's interactive sign-in log of the Microsoft 365 tenant
  (Teams, Outlook on the web, the Microsoft 365 portal), in the Azure Monitor diagnostic-settings
  export form (envelope plus ``properties``), one JSON object per line, from the same places and
  blocks of work as the person's Okta sign-ins;
* ``linux.auditd``: db-01's ``/var/log/audit/audit.log`` (auditd 3.0 on Debian 12, ``log_format =
  ENRICHED``, ``name_format = hostname``): the PAM and sshd records of every SSH session on the
  database server (USER_AUTH, USER_ACCT, USER_START, USER_LOGIN, USER_CMD for sudo, USER_END,
  USER_LOGOUT), with the process and session numbers of the same sessions in db-01's auth.log;
* ``gcp.audit``: Cloud Audit Logs of the Google Cloud project ``zorgwijk-analytics``
  (europe-west4) as a log sink exports them (Cloud Logging ``LogEntry`` with an ``AuditLog``
  ``protoPayload``): the data team's BigQuery work in the console on pseudonymised tables
  (``TableService.GetTable``, ``JobService.InsertJob`` with ``BigQueryAuditMetadata``, now and
  then ``TableService.InsertTable`` in the scratch dataset, Admin Activity) and the nightly load
  (``storage.objects.create`` into the landing bucket, then a BigQuery load job) that the CRM
  export instance runs with the loader service account's key;
* ``gworkspace.activity``: the data team's Google Workspace (``zorgwijk.nl``) as the Reports API
  returns it (``admin#reports#activity``, one event an activity): a Google sign-in with 2-Step
  Verification about once a week, now and then after a mistyped password, and the team's
  reports in Drive viewed, and edited by their owners (``DATA_TEAM`` says who is in it);
* ``squid.access``: the office web proxy's ``access.log`` (proxy-01, Squid 5.7 on Debian 12,
  ``logformat squid``, Kerberos proxy authentication with the realm stripped): the laptops of the
  people working at the office (one DHCP lease each, 10.30.0.100 + n): the browser's first request
  answered 407, HTTPS tunnels to the SaaS and sites of the person's role, Windows' certificate
  checks in plain HTTP, rarely a blocked file-sharing or webmail site (403);
* ``box.event``: the Box enterprise's ``admin_logs`` events (Events API), in which HR and finance
  share files with the payroll bureau and the occupational health service (``BOX_USERS``): a
  sign-in most mornings, files of their folders previewed, downloaded, and a new version uploaded
  now and then by the folder's owner; the proxy log shows the same people's tunnels to Box.

Benign traffic follows office hours (08:00-18:00 Europe/Amsterdam, weekdays) with natural
variation: late workers, part-timers, a few weekend logins, a night-shift SRE and a night-shift
claims handler, a new hire who starts on 4 November 2026 (``DemoUser.hired``), an engineer who
leaves on 5 November 2026 (``DemoUser.left``: nothing of his after that date in benign traffic),
a finance employee on long leave (no traffic at all), a support employee who joins the claims team
on 16 November (``DemoUser.claims_from``), and near misses that a good rule must not flag
(password typos, a phone retrying an old password, console logins *with* MFA, a repository made
*internal*, sudo sessions to root, cron sessions for root, onboarding and offboarding, a bucket
policy that *denies* everyone without TLS, a trail that gets *more* logging, an engineer
rotating their own access key). Up to a month (``days=30``) is generated in a few seconds.

Attack scenarios are injected on top; each record they produce carries the scenario id
(``DemoRecord.scenario``) and each scenario says which rule ids should fire
(``Scenario.expected_rules``): every rule of the default pack is expected by at least one
scenario. Decisions worth knowing:

* **Business travel** is the labelled scenario ``business_trip``: a finance employee attends a
  conference in Barcelona. Travel at airliner speed is not impossible travel (that rule must stay
  quiet), but the first sign-in from Spain *is* a sign-in from a new country, so
  ``login_from_new_country`` is expected: a true positive that triage closes as "travelling".
  The trip days are in the company calendar (the traveller is away whether or not scenarios are
  generated), so benign traffic is the same with and without scenarios.
* Scenarios whose rules need history (a learning period, a baseline, a date in the directory) are
  placed late enough in the window, and scenarios that cannot fit a short window are left out
  (``SCENARIO_MIN_DAYS``); with ``days >= 7`` all are there.
* ``entra_aitm_phishing`` is in every window (impossible travel needs no history); it also expects
  ``login_from_new_country`` only where it lands after the account's three days of learning, which
  a window of a week or more allows: the expectation follows from where it landed.
* ``dormant_account`` carries one record from before the window (the account's last use, 47
  days earlier): the history the dormant-account rule needs, which a month-long demo cannot hold.
* The identity directory is static (``demo.context``): it states the current roles and statuses,
  with the dates (hired, terminated since) that make it true over the whole window.

Everything is a function of the seed and the start: no wall clock, no global random state.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday

SYSLOG = "syslog"
HTTP = "http"
CLOUDTRAIL = "aws.cloudtrail"
OKTA = "okta.system"
GITHUB = "github.audit"
O365 = "o365.audit"
KUBERNETES = "kubernetes.audit"
PGAUDIT = "postgresql.pgaudit"
WINDOWS = "windows.security"
ENTRA = "azure.signinlogs"
AUDITD = "linux.auditd"
GCP = "gcp.audit"
GWORKSPACE = "gworkspace.activity"
SQUID = "squid.access"
BOX = "box.event"
LOG_TYPES = (SYSLOG, HTTP, CLOUDTRAIL, OKTA, GITHUB, O365, KUBERNETES, PGAUDIT, WINDOWS, ENTRA, AUDITD, GCP,
             GWORKSPACE, SQUID, BOX)

SRC_BASTION = "demo:bastion-auth.log"
SRC_DB = "demo:db-01-auth.log"
SRC_APP = "demo:app-01-auth.log"
SRC_CRM = "demo:crm-access.log"
SRC_CLOUDTRAIL = "demo:cloudtrail"
SRC_OKTA = "demo:okta"
SRC_GITHUB = "demo:github"
SRC_O365 = "demo:o365"
SRC_K8S = "demo:kubernetes"
SRC_PG = "demo:db-01-postgresql.log"
SRC_WINDOWS = "demo:wec-security.jsonl"
SRC_ENTRA = "demo:entra-signins"
SRC_DB_AUDIT = "demo:db-01-audit.log"
SRC_GCP = "demo:gcp-audit"
SRC_GWORKSPACE = "demo:gworkspace"
SRC_PROXY = "demo:proxy-01-access.log"
SRC_BOX = "demo:box"

#: source -> (file name written by :func:`write_files`, log type)
SOURCES: dict[str, tuple[str, str]] = {
    SRC_BASTION: ("bastion-auth.log", SYSLOG),
    SRC_DB: ("db-01-auth.log", SYSLOG),
    SRC_APP: ("app-01-auth.log", SYSLOG),
    SRC_CRM: ("crm-access.log", HTTP),
    SRC_CLOUDTRAIL: ("cloudtrail.jsonl", CLOUDTRAIL),
    SRC_OKTA: ("okta.jsonl", OKTA),
    SRC_GITHUB: ("github.jsonl", GITHUB),
    SRC_O365: ("o365.jsonl", O365),
    SRC_K8S: ("kube-apiserver-audit.jsonl", KUBERNETES),
    SRC_PG: ("db-01-postgresql.log", PGAUDIT),
    SRC_WINDOWS: ("wec-security.jsonl", WINDOWS),
    SRC_ENTRA: ("entra-signins.jsonl", ENTRA),
    SRC_DB_AUDIT: ("db-01-audit.log", AUDITD),
    SRC_GCP: ("gcp-audit.jsonl", GCP),
    SRC_GWORKSPACE: ("gworkspace-activity.jsonl", GWORKSPACE),
    SRC_PROXY: ("proxy-01-access.log", SQUID),
    SRC_BOX: ("box-events.jsonl", BOX),
}

#: scenario ids
SSH_BRUTE_FORCE = "ssh_brute_force"
SSH_BRUTE_FORCE_THEN_SUCCESS = "ssh_brute_force_then_success"
SSH_ROOT_LOGIN = "ssh_root_login"
AWS_CONSOLE_LOGIN_WITHOUT_MFA = "aws_console_login_without_mfa"
OKTA_MFA_DEACTIVATED = "okta_mfa_deactivated"
GITHUB_REPO_MADE_PUBLIC = "github_repo_made_public"
MAILBOX_FORWARDING_EXTERNAL = "mailbox_forwarding_external"
MASS_EXPORT = "mass_export"
OKTA_BRUTE_FORCE = "okta_brute_force"
PASSWORD_SPRAYING = "password_spraying"
CREDENTIAL_STUFFING = "credential_stuffing"
SESSION_HIJACK_ABROAD = "session_hijack_abroad"
BUSINESS_TRIP = "business_trip"
NIGHT_SNOOPING = "night_snooping"
MEDICAL_WITHOUT_NEED = "medical_without_need"
ADMIN_BULK_READ = "admin_bulk_read"
DORMANT_ACCOUNT = "dormant_account"
LEAVER_RETURNS = "leaver_returns"
AWS_KEY_BACKDOOR = "aws_key_backdoor"
AWS_DEFENSE_EVASION = "aws_defense_evasion"
S3_BUCKET_EXPOSED = "s3_bucket_exposed"
GITHUB_OWNER_ESCALATION = "github_owner_escalation"
OKTA_ADMIN_GRANT = "okta_admin_grant"
K8S_STOLEN_KUBECONFIG = "k8s_stolen_kubeconfig"
DB_DUMP_AS_POSTGRES = "db_dump_as_postgres"
WINDOWS_PASSWORD_SPRAY = "windows_password_spray"
INSTANCE_CREDENTIALS_STOLEN = "instance_credentials_stolen"
ENTRA_AITM_PHISHING = "entra_aitm_phishing"

#: scenarios left out of windows shorter than this many days (they need history or dates in it)
SCENARIO_MIN_DAYS: dict[str, int] = {SESSION_HIJACK_ABROAD: 7, BUSINESS_TRIP: 7, ADMIN_BULK_READ: 7,
                                     LEAVER_RETURNS: 7}


# --------------------------------------------------------------------------------------------
# Public records


@dataclass(frozen=True)
class DemoRecord:
    """One raw log line (no newline) with where it goes and, for attack traffic, its scenario."""

    data: bytes
    log_type: str  # one of LOG_TYPES
    source: str  # demo:bastion-auth.log, demo:crm-access.log, demo:cloudtrail...
    scenario: str | None  # None for benign traffic, else the id of the scenario that produced it
    timestamp: datetime  # event time (UTC), exactly as written in the line


@dataclass(frozen=True)
class Scenario:
    """An injected attack: ground truth for the detection demo and the rule tests.

    ``start``/``end`` span the scenario's records; ``actors`` are the user names and source
    addresses involved; ``subject_ids`` the data subjects (customer ids) whose personal data it
    touched, when it touched any; ``record_count`` how many records carry this scenario id.
    """

    id: str
    description: str
    expected_rules: tuple[str, ...]
    start: datetime
    end: datetime
    actors: tuple[str, ...]
    subject_ids: tuple[str, ...] = ()
    record_count: int = 0


# --------------------------------------------------------------------------------------------
# The company


@dataclass(frozen=True)
class Place:
    """A source address with the geography Okta would attach to it."""

    ip: str
    city: str
    country_iso: str
    country: str
    lat: float
    lon: float
    isp: str
    asn: int
    state: str = ""
    postal_code: str = ""


@dataclass(frozen=True)
class DemoUser:
    """An employee (or contractor). ``username`` is the login on the servers, the CRM and AWS IAM."""

    username: str
    full_name: str
    role: str  # engineer | sre | support | hr | finance | dpo | admin | contractor
    department: str
    uid: int
    homes: tuple[Place, ...]
    office_share: float = 0.6  # share of working days spent at the office
    days_off: tuple[int, ...] = ()  # weekdays not worked (part-timers), 0 = Monday
    late: bool = False  # often works into the evening
    weekend: float = 0.0  # chance of a short weekend session per weekend day
    night_shift: bool = False  # on-call SRE working nights
    ssh_password: bool = False  # logs into the bastion with a password instead of a key
    claims: bool = False  # support on the claims team: reads medical data
    aws_console: bool = False  # IAM user with console access (always with MFA)
    browser: int = 0  # index into _BROWSERS
    hired: date | None = None  # first working day (no traffic before)
    left: date | None = None  # terminated from this day on (no traffic from then on)
    on_leave: bool = False  # on long leave for the whole window: no traffic at all
    claims_from: date | None = None  # joins the claims team on this day (reads medical data from then on)

    @property
    def status(self) -> str:
        """The directory status today: terminated once the person has left (from ``left`` on)."""
        return "terminated" if self.left is not None else "active"

    def claims_at(self, ts: datetime) -> bool:
        """Whether the person is on the claims team at ``ts``."""
        return self.claims or (self.claims_from is not None and ts.astimezone(AMSTERDAM).date() >= self.claims_from)

    def works_on(self, day: date) -> bool:
        """Employed and not on leave on this local day."""
        return not self.on_leave and (self.hired is None or day >= self.hired) and \
            (self.left is None or day < self.left)

    @property
    def email(self) -> str:
        return f"{self.username}@zorgwijk.nl"

    @property
    def github(self) -> str:
        return f"{self.username}-zw"

    @property
    def okta_id(self) -> str:
        return "00u" + _hid("okta", self.username, 17)

    @property
    def user_agent(self) -> str:
        return _BROWSERS[self.browser][0]


@dataclass(frozen=True)
class DemoResource:
    """Something that holds data, with its classification (what the enrichment stage would know)."""

    type: str  # url | bucket | repository | host | application
    name: str  # URL path pattern, bucket, owner/repo, host name
    classification: str  # public | internal | confidential | personal | special
    data_categories: tuple[str, ...] = ()
    owner: str | None = None


def _nl(ip: str, city: str, lat: float, lon: float, isp: str, asn: int, state: str, postal: str) -> Place:
    return Place(ip, city, "NL", "Netherlands", lat, lon, isp, asn, state, postal)


_OFFICE = tuple(
    _nl(f"145.100.10.{i}", "Amsterdam", 52.3676, 4.9041, "SURF B.V.", 1103, "North Holland", "1012")
    for i in (2, 3, 4, 5))

_ZIGGO, _KPN, _ODIDO, _DELTA = ("Ziggo B.V.", 33915), ("KPN B.V.", 1136), ("Odido Netherlands B.V.", 50266), \
    ("DELTA Fiber Nederland B.V.", 15435)


def _home(ip: str, city: str, isp: tuple[str, int]) -> Place:
    lat, lon, state, postal = _CITIES[city]
    return _nl(ip, city, lat, lon, isp[0], isp[1], state, postal)


_CITIES: dict[str, tuple[float, float, str, str]] = {
    "Amsterdam": (52.3676, 4.9041, "North Holland", "1091"),
    "Haarlem": (52.3874, 4.6462, "North Holland", "2011"),
    "Utrecht": (52.0907, 5.1214, "Utrecht", "3511"),
    "Amersfoort": (52.1561, 5.3878, "Utrecht", "3811"),
    "Leiden": (52.1601, 4.4970, "South Holland", "2311"),
    "Rotterdam": (51.9244, 4.4777, "South Holland", "3011"),
    "Zaandam": (52.4420, 4.8292, "North Holland", "1506"),
    "Almere": (52.3508, 5.2647, "Flevoland", "1315"),
    "Hilversum": (52.2292, 5.1669, "North Holland", "1211"),
    "Purmerend": (52.5050, 4.9597, "North Holland", "1441"),
}

_BROWSERS: tuple[tuple[str, str, str], ...] = (  # (user agent, Okta os, Okta browser)
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 "
     "Safari/537.36", "Windows 10", "CHROME"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 "
     "Safari/605.1.15", "Mac OS X", "SAFARI"),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0", "Linux", "FIREFOX"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 "
     "Safari/537.36 Edg/142.0.0.0", "Windows 10", "EDGE_CHROMIUM"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 "
     "Safari/537.36", "Mac OS X", "CHROME"),
)


def _u(username: str, full_name: str, role: str, department: str, uid: int, homes: tuple[Place, ...],
       **kw: Any) -> DemoUser:
    return DemoUser(username, full_name, role, department, uid, homes, **kw)


_USERS: tuple[DemoUser, ...] = (
    _u("jdevries", "Jan de Vries", "engineer", "Engineering", 1001,
       (_home("84.105.38.17", "Haarlem", _ZIGGO),), office_share=0.7, browser=2, weekend=0.25),
    _u("sbakker", "Sanne Bakker", "engineer", "Engineering", 1002,
       (_home("86.87.112.45", "Amsterdam", _KPN),), late=True, browser=4, weekend=0.2),
    _u("tvandijk", "Thijs van Dijk", "engineer", "Engineering", 1003,
       (_home("31.151.77.203", "Utrecht", _ZIGGO),), office_share=0.5, browser=2),
    _u("emeijer", "Emma Meijer", "engineer", "Engineering", 1004,
       (_home("77.163.201.9", "Leiden", _ODIDO),), days_off=(4,), browser=4),
    _u("rhendriks", "Ruben Hendriks", "engineer", "Engineering", 1005,
       (_home("84.104.6.121", "Zaandam", _ZIGGO), _home("77.172.14.66", "Zaandam", _ODIDO)),
       ssh_password=True, browser=0),
    _u("lsmit", "Lotte Smit", "engineer", "Engineering", 1006,
       (_home("94.208.153.30", "Almere", _DELTA),), office_share=0.4, browser=2, late=True),
    _u("mvos", "Martijn Vos", "engineer", "Engineering", 1007,
       (_home("82.168.10.20", "Rotterdam", _ZIGGO),), office_share=0.6, browser=4, left=date(2026, 11, 5)),
    _u("mdekker", "Mark Dekker", "sre", "Operations", 1101,
       (_home("86.81.54.190", "Amersfoort", _KPN),), late=True, weekend=0.5, aws_console=True, browser=2),
    _u("abos", "Anouk Bos", "sre", "Operations", 1102,
       (_home("31.20.140.72", "Hilversum", _ZIGGO),), aws_console=True, browser=4, weekend=0.2),
    _u("kvisser", "Koen Visser", "sre", "Operations", 1103,
       (_home("84.86.209.4", "Purmerend", _ZIGGO),), night_shift=True, office_share=0.0, aws_console=True,
       browser=2),
    _u("fjanssen", "Fleur Janssen", "support", "Customer Service", 1201,
       (_home("86.92.18.240", "Amsterdam", _KPN),), claims=True, office_share=0.8),
    _u("dmulder", "Daan Mulder", "support", "Customer Service", 1202,
       (_home("77.161.90.58", "Almere", _ODIDO),), office_share=0.5, browser=3),
    _u("igraaf", "Iris de Graaf", "support", "Customer Service", 1203,
       (_home("84.107.230.15", "Haarlem", _ZIGGO),), claims=True, days_off=(2,), browser=1),
    _u("nvermeulen", "Noa Vermeulen", "support", "Customer Service", 1204,
       (_home("94.209.71.133", "Zaandam", _DELTA),), browser=0),
    _u("bpeters", "Bram Peters", "support", "Customer Service", 1205,
       (_home("86.88.3.77", "Utrecht", _KPN),), office_share=0.75, claims=True, browser=3),
    _u("yvandenberg", "Yara van den Berg", "support", "Customer Service", 1206,
       (_home("31.151.2.98", "Amsterdam", _ZIGGO),), days_off=(0,), browser=1),
    _u("ljacobs", "Lucas Jacobs", "support", "Customer Service", 1207,
       (_home("77.166.45.12", "Purmerend", _ODIDO),), browser=0, claims_from=date(2026, 11, 16)),
    _u("sdijkman", "Sophie Dijkman", "support", "Customer Service", 1208,
       (_home("62.45.10.20", "Rotterdam", _KPN),), claims=True, night_shift=True, office_share=0.0, browser=3),
    _u("lvanderveen", "Lisa van der Veen", "support", "Customer Service", 1209,
       (_home("80.100.10.20", "Utrecht", _KPN),), office_share=0.8, browser=0, hired=date(2026, 11, 4)),
    _u("wdejong", "Willemijn de Jong", "hr", "People", 1301,
       (_home("84.106.122.7", "Hilversum", _ZIGGO),), days_off=(4,), browser=1),
    _u("kbrouwer", "Kim Brouwer", "hr", "People", 1302,
       (_home("86.86.240.61", "Amersfoort", _KPN),), browser=0),
    _u("pvanleeuwen", "Pieter van Leeuwen", "finance", "Finance", 1401,
       (_home("94.210.8.199", "Leiden", _DELTA),), aws_console=True, office_share=0.8, browser=3),
    _u("mkoster", "Marloes Koster", "finance", "Finance", 1402,
       (_home("84.104.188.52", "Haarlem", _ZIGGO),), days_off=(2,), browser=1),
    _u("gprins", "Gijs Prins", "finance", "Finance", 1403,
       (_home("77.170.99.140", "Rotterdam", _ODIDO),), browser=0),
    _u("hdevos", "Henk de Vos", "finance", "Finance", 1404,
       (_home("145.53.10.20", "Rotterdam", _KPN),), browser=1, on_leave=True),
    _u("hwillems", "Hanna Willems", "dpo", "Legal & Privacy", 1501,
       (_home("86.83.77.29", "Utrecht", _KPN),), browser=1),
    _u("pjansen", "Peter Jansen", "admin", "IT", 1601,
       (_home("31.21.88.164", "Amsterdam", _ZIGGO),), aws_console=True, weekend=0.15, browser=4),
    _u("evanderlinden", "Eva van der Linden", "admin", "IT", 1602,
       (_home("86.90.211.3", "Almere", _KPN),), aws_console=True, late=True, browser=0),
    _u("akaya", "Ahmet Kaya", "contractor", "Engineering", 1701,
       (_home("77.168.133.201", "Rotterdam", _ODIDO),), office_share=0.0, browser=2),
    _u("jwu", "Jun Wu", "contractor", "Engineering", 1702,
       (Place("85.243.17.92", "Lisbon", "PT", "Portugal", 38.7223, -9.1393, "MEO - Servicos de Comunicacoes "
              "e Multimedia S.A.", 3243, "Lisbon", "1100"),), office_share=0.0, browser=4),
)

_RESOURCES: tuple[DemoResource, ...] = (
    DemoResource("url", "/api/customers/{id}", "personal", ("identity", "contact", "bsn"), "Customer Service"),
    DemoResource("url", "/api/customers/{id}/medical", "special", ("health",), "Customer Service"),
    DemoResource("url", "/api/customers/{id}/notes", "personal", ("contact",), "Customer Service"),
    DemoResource("url", "/api/customers/search", "personal", ("identity", "contact"), "Customer Service"),
    DemoResource("url", "/api/invoices/{id}", "personal", ("financial",), "Finance"),
    DemoResource("bucket", "zorgwijk-customer-exports", "personal", ("identity", "contact", "financial"), "Finance"),
    DemoResource("bucket", "zorgwijk-backups", "special", ("identity", "contact", "financial", "health", "bsn"),
                 "Operations"),
    DemoResource("bucket", "zorgwijk-artifacts", "internal", (), "Engineering"),
    DemoResource("bucket", "zorgwijk-logs", "confidential", (), "Operations"),
    DemoResource("host", "db-01", "special", ("identity", "contact", "financial", "health", "bsn"), "Operations"),
    DemoResource("host", "app-01", "confidential", (), "Operations"),
    DemoResource("host", "bastion", "internal", (), "Operations"),
    DemoResource("repository", "zorgwijk/claims-engine", "confidential", (), "Engineering"),
    DemoResource("repository", "zorgwijk/crm-backend", "confidential", (), "Engineering"),
    DemoResource("repository", "zorgwijk/website", "public", (), "Engineering"),
)

_REPOS: dict[str, str] = {  # repo -> visibility
    "zorgwijk/crm-backend": "private",
    "zorgwijk/crm-frontend": "private",
    "zorgwijk/claims-engine": "private",
    "zorgwijk/infra": "private",
    "zorgwijk/data-pipelines": "private",
    "zorgwijk/design-system": "private",
    "zorgwijk/ops-runbooks": "private",
    "zorgwijk/website": "public",
}


@dataclass(frozen=True)
class DemoCompany:
    """Zorgwijk BV: its people, places, systems and the resources that hold personal data.

    Fixed (not drawn from the seed) so that rule authors and the identity directory can rely on
    the names and addresses. The office is 145.100.10.0/29 (egress .2-.5); internal hosts live in
    10.20.0.0/16; the bastion is the only SSH entry from the internet.
    """

    name: str = "Zorgwijk BV"
    domain: str = "zorgwijk.nl"
    timezone: str = "Europe/Amsterdam"
    office_hours: tuple[int, int] = (8, 18)  # local time, weekdays
    flexitime: tuple[int, int] = (7, 19)  # the agreed working-time window for office staff (the directory's hours)
    office_network: str = "145.100.10.0/29"
    office: tuple[Place, ...] = _OFFICE
    users: tuple[DemoUser, ...] = _USERS
    resources: tuple[DemoResource, ...] = _RESOURCES
    hosts: tuple[tuple[str, str], ...] = (("bastion", "10.20.0.10"), ("db-01", "10.20.1.11"),
                                          ("app-01", "10.20.1.21"))
    bastion_public_ip: str = "145.100.10.6"
    crm_host: str = "crm.zorgwijk.nl"
    customer_ids: tuple[int, int] = (100001, 148500)  # inclusive range of CRM customer ids
    aws_account_id: str = "482915736021"
    aws_region: str = "eu-central-1"
    buckets: tuple[str, ...] = ("zorgwijk-customer-exports", "zorgwijk-backups", "zorgwijk-artifacts",
                                "zorgwijk-logs")
    github_org: str = "zorgwijk"
    repos: tuple[tuple[str, str], ...] = tuple(_REPOS.items())
    okta_org: str = "zorgwijk.okta.com"
    entra_tenant_id: str = "5f3c2a71-9d4e-4b8a-a6c1-2e7f90b4d813"
    gcp_project: str = "zorgwijk-analytics"
    gcp_location: str = "europe-west4"
    gworkspace_customer_id: str = "C03k9x2mb"
    ci_runner: Place = field(default_factory=lambda: Place(
        "20.101.154.17", "Amsterdam", "NL", "Netherlands", 52.3740, 4.8897, "Microsoft Corporation", 8075))
    service_accounts: tuple[str, ...] = ("deploy", "postgres", "backup")
    services: tuple[tuple[str, str], ...] = (  # name -> what it is and where it logs
        ("sshd", "OpenSSH on bastion (internet-facing), db-01 and app-01; auth.log per host"),
        ("crm", "CRM web app at crm.zorgwijk.nl holding customer, medical and invoice data; nginx access log"),
        ("aws", "AWS account 482915736021 (eu-central-1); CloudTrail incl. S3 data events"),
        ("okta", "Okta (zorgwijk.okta.com): SSO with MFA for the CRM, GitHub, Slack and others; System Log"),
        ("github", "GitHub organisation 'zorgwijk'; audit log"),
        ("entra", "Microsoft Entra ID tenant zorgwijk.nl: Microsoft 365 (Outlook, Teams) sign-ins; sign-in logs "
                  "exported by diagnostic settings"),
        ("gcp", "Google Cloud project zorgwijk-analytics (europe-west4): BigQuery on pseudonymised extracts, "
                "loaded nightly; Cloud Audit Logs (Admin Activity, Data Access) exported by a log sink"),
        ("gworkspace", "Google Workspace zorgwijk.nl for the data team (Google sign-in, Drive reports); Reports API "
                       "activities"),
        ("proxy", "Squid web proxy proxy-01 in the office (Kerberos authentication, a blocklist); access.log in "
                  "the native format"),
        ("box", "Box (zorgwijk.app.box.com): HR's and finance's files shared with the payroll bureau and the "
                "occupational health service; Events API admin_logs"),
    )

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(sorted({u.role for u in self.users}))

    @property
    def departments(self) -> tuple[str, ...]:
        return tuple(sorted({u.department for u in self.users}))

    def user(self, username: str) -> DemoUser:
        for u in self.users:
            if u.username == username:
                return u
        raise KeyError(username)

    def by_role(self, role: str) -> tuple[DemoUser, ...]:
        return tuple(u for u in self.users if u.role == role)

    def host_ip(self, name: str) -> str:
        return dict(self.hosts)[name]

    def is_office_hours(self, ts: datetime) -> bool:
        """Whether ``ts`` falls on a weekday between the office hours, Amsterdam time."""
        local = ts.astimezone(ZoneInfo(self.timezone))
        return local.weekday() < 5 and self.office_hours[0] <= local.hour < self.office_hours[1]

    def directory(self) -> list[dict[str, Any]]:
        """The identity directory as plain dicts (for an enrichment stage or a demo config)."""
        return [{
            "name": u.username, "full_name": u.full_name, "email": u.email, "github": u.github,
            "okta_id": u.okta_id, "roles": [u.role], "department": u.department,
            "home_ips": [p.ip for p in u.homes], "status": u.status, "status_since": u.left, "hired": u.hired,
        } for u in self.users]


COMPANY = DemoCompany()

# --------------------------------------------------------------------------------------------
# Formatting helpers

_MON = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@lru_cache(maxsize=8192)
def _hid(kind: str, key: str, n: int, alphabet: str = _B62) -> str:
    """A stable id derived from a name (not from the seed), e.g. Okta user ids."""
    h = hashlib.sha256(f"{kind}:{key}".encode()).digest()
    v = int.from_bytes(h, "big")
    out = []
    for _ in range(n):
        v, r = divmod(v, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def _trunc(ts: datetime, unit: str) -> datetime:
    if unit == "s":
        return ts.replace(microsecond=0)
    if unit == "ms":
        return ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    return ts


def _syslog_ts(ts: datetime) -> str:
    return ts.astimezone(AMSTERDAM).isoformat(timespec="microseconds")


@lru_cache(maxsize=4096)
def _amsterdam_offset(utc_hour: int) -> int:
    """Minutes east of UTC in Amsterdam during this UTC hour (DST changes on the hour, at 01:00 UTC)."""
    off = datetime.fromtimestamp(utc_hour * 3600, UTC).astimezone(AMSTERDAM).utcoffset() or timedelta(0)
    return int(off.total_seconds()) // 60


def _clf_ts(ts: datetime) -> str:
    mins = _amsterdam_offset(int(ts.timestamp()) // 3600)
    lt = ts.astimezone(UTC) + timedelta(minutes=mins)  # the wall clock, as fields (the zone name is not printed)
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    return (f"{lt.day:02d}/{_MON[lt.month - 1]}/{lt.year}:{lt.hour:02d}:{lt.minute:02d}:{lt.second:02d} "
            f"{sign}{mins // 60:02d}{mins % 60:02d}")


def _iso_z(ts: datetime, ms: bool = False) -> str:
    u = ts.astimezone(UTC)
    base = u.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{u.microsecond // 1000:03d}Z" if ms else f"{base}Z"


def _epoch_ms(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def _at(day: date, seconds: float) -> datetime:
    """UTC instant of ``seconds`` after local midnight of ``day`` in Amsterdam (wall clock)."""
    wall = datetime.combine(day, time(0), tzinfo=AMSTERDAM) + timedelta(seconds=seconds)
    return wall.astimezone(UTC)


H = 3600.0

# --------------------------------------------------------------------------------------------
# The generator


class _Gen:
    def __init__(self, company: DemoCompany, seed: int, start: datetime, days: int, prefix: str = "b") -> None:
        self.c = company
        self.seed = seed
        self.start = start
        self.end = start + timedelta(days=days)
        self.days = days
        self.out: list[DemoRecord] = []
        self._prefix = prefix
        self._tokens = 0
        self.public_from: dict[str, tuple[datetime, datetime | None]] = {}  # repo -> public from, until
        first = start.astimezone(AMSTERDAM).date() - timedelta(days=1)
        last = self.end.astimezone(AMSTERDAM).date()
        self.local_days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        # The company calendar (the same with or without scenarios): who is away on which days.
        self.trip = _trip_days(start, days)
        self.away: dict[str, set[date]] = {TRAVELLER: set(self.trip)} if self.trip else {}

    def rng(self, part: str) -> random.Random:
        # One stream per part, so that changing one part does not reshuffle all the others.
        return random.Random(f"zorgwijk:{self.seed}:{part}")

    # ---- emitting ------------------------------------------------------------------------

    def _emit(self, data: bytes, log_type: str, source: str, scenario: str | None, ts: datetime) -> None:
        if scenario is None and not (self.start <= ts < self.end):
            return
        self.out.append(DemoRecord(data=data, log_type=log_type, source=source, scenario=scenario, timestamp=ts))

    def syslog(self, host: str, ts: datetime, prog: str, msg: str, scenario: str | None = None) -> None:
        ts = _trunc(ts, "us")
        line = f"{_syslog_ts(ts)} {host} {prog}: {msg}"
        src = {"bastion": SRC_BASTION, "db-01": SRC_DB, "app-01": SRC_APP}[host]
        self._emit(line.encode(), SYSLOG, src, scenario, ts)

    def http(self, ts: datetime, ip: str, user: str | None, method: str, target: str, status: int, size: int,
             referrer: str | None, ua: str, scenario: str | None = None) -> None:
        ts = _trunc(ts, "s")
        line = (f'{ip} - {user or "-"} [{_clf_ts(ts)}] "{method} {target} HTTP/1.1" {status} {size} '
                f'"{referrer or "-"}" "{ua}"')
        self._emit(line.encode(), HTTP, SRC_CRM, scenario, ts)

    def json(self, log_type: str, source: str, ts: datetime, obj: dict[str, Any], scenario: str | None) -> None:
        self._emit(orjson.dumps(obj), log_type, source, scenario, ts)

    def pg(self, ts: datetime, pid: int, user: str, db: str, body: str, scenario: str | None = None) -> None:
        """A PostgreSQL server-log line of db-01 (``log_line_prefix = '%m [%p] %q%u@%d '``, UTC)."""
        ts = _trunc(ts, "ms")
        line = f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} UTC [{pid}] {user}@{db} {body}"
        self._emit(line.encode(), PGAUDIT, SRC_PG, scenario, ts)

    def winlogon(self, ts: datetime, event_id: int, laptop: str, user: str, logon_id: int, *,
                 logon_type: int = 2, process: str = "C:\\Windows\\System32\\svchost.exe",
                 subject: str = "ZW-LAPTOP$", scenario: str | None = None) -> None:
        """A Security-log event of an office laptop as the collector forwards it (NXLog ``im_msvistalog``:
        EventData flattened, ``@timestamp`` UTC): 4624 logon, 4625 failed logon, 4634 logoff."""
        ts = _trunc(ts, "ms")
        fail = event_id == 4625
        obj: dict[str, Any] = {
            "@timestamp": f"{ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z",
            "EventID": event_id, "Channel": "Security", "SourceName": "Microsoft-Windows-Security-Auditing",
            "Hostname": f"{laptop}.corp.zorgwijk.nl", "EventType": "AUDIT_FAILURE" if fail else "AUDIT_SUCCESS",
            "Category": "Logoff" if event_id == 4634 else "Logon", "TargetUserName": user,
            "TargetDomainName": "ZORGWIJK", "LogonType": str(logon_type)}
        if event_id != 4634:
            obj.update({"SubjectUserName": subject, "SubjectDomainName": "ZORGWIJK", "WorkstationName": laptop,
                        "IpAddress": "-" if logon_type == 2 else "127.0.0.1", "ProcessName": process,
                        "LogonProcessName": "Advapi  " if logon_type == 2 and fail else "User32 ",
                        "AuthenticationPackageName": "Negotiate"})
        if fail:
            obj.update({"Status": "0xc000006d", "SubStatus": "0xc000006a", "FailureReason": "%%2313"})
        else:
            obj["TargetLogonId"] = f"0x{logon_id:x}"
        self._emit(orjson.dumps(obj), WINDOWS, SRC_WINDOWS, scenario, ts)

    def pg_session(self, r: random.Random, ts: datetime, user: str, reads: list[str], *, gap: tuple[float, float],
                   scenario: str | None = None) -> datetime:
        """A connection of ``user`` to the crm database and its audited reads, one per statement."""
        pid = r.randint(20_000, 4_000_000)
        self.pg(ts, pid, user, "crm", f"LOG:  connection authorized: user={user} database=crm "
                f"application_name={'psql' if scenario or user != 'backup' else 'pg_dump'}", scenario)
        for n, stmt in enumerate(reads, start=1):
            ts += timedelta(seconds=r.uniform(*gap))
            table = re.search(r"(?i)\b(?:from|copy) (public\.\w+)", stmt)
            obj = table[1] if table else ""
            sql = '"' + stmt.replace('"', '""') + '"' if ("," in stmt or '"' in stmt) else stmt
            cmd = "COPY" if stmt.startswith("COPY") else "SELECT"
            self.pg(ts, pid, user, "crm", f"LOG:  AUDIT: SESSION,{n},1,READ,{cmd},TABLE,{obj},{sql},<not logged>",
                    scenario)
        return ts

    def pid(self, host: str, r: random.Random | None = None) -> str:
        """A placeholder for a process id; :func:`_renumber` makes them increase with time per host."""
        self._tokens += 1
        return f"\x01P{self._prefix}{self._tokens}\x02"

    def session_id(self) -> str:
        """A placeholder for a systemd-logind session number (renumbered like process ids)."""
        self._tokens += 1
        return f"\x01S{self._prefix}{self._tokens}\x02"

    # ---- sshd ---------------------------------------------------------------------------

    def ssh_session(self, r: random.Random, host: str, ts: datetime, user: str, uid: int, ip: str, *,
                    method: str = "publickey", duration: float = 600.0, typos: int = 0,
                    sudo: Iterable[tuple[str, str]] = (), scenario: str | None = None) -> datetime:
        """A successful login, its session and its logout. Returns when it ended."""
        pid = self.pid(host, r)
        port = r.randint(32768, 60999)
        sshd = f"sshd[{pid}]"
        t = ts
        if typos:
            self.syslog(host, t, sshd, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
                        f"ruser= rhost={ip}  user={user}", scenario)
            for _ in range(typos):
                t += timedelta(seconds=r.uniform(0.5, 2.0))
                self.syslog(host, t, sshd, f"Failed password for {user} from {ip} port {port} ssh2", scenario)
                t += timedelta(seconds=r.uniform(3, 9))
        key = f": ED25519 SHA256:{_hid('sshkey', user, 43, _B62 + '+/')}" if method == "publickey" else ""
        self.syslog(host, t, sshd, f"Accepted {method} for {user} from {ip} port {port} ssh2{key}", scenario)
        t += timedelta(milliseconds=r.randint(5, 40))
        self.syslog(host, t, sshd, f"pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)",
                    scenario)
        sid = self.session_id()
        t += timedelta(milliseconds=r.randint(2, 20))
        self.syslog(host, t, "systemd-logind[612]", f"New session {sid} of user {user}.", scenario)
        end = t + timedelta(seconds=duration)
        cmds = list(sudo)
        for i, (target, cmd) in enumerate(cmds):
            tc = t + timedelta(seconds=duration * (i + 1) / (len(cmds) + 1))
            self.sudo(host, tc, user, uid, target, cmd, r, scenario)
        if host == "db-01":  # the database server runs auditd too
            self.audit_session(ts, t, end, user, uid, ip, pid, sid, method,
                               [(t + timedelta(seconds=duration * (i + 1) / (len(cmds) + 1)), target, cmd)
                                for i, (target, cmd) in enumerate(cmds)], scenario)
        self.syslog(host, end, sshd, f"Received disconnect from {ip} port {port}:11: disconnected by user", scenario)
        self.syslog(host, end + timedelta(microseconds=300), sshd, f"Disconnected from user {user} {ip} port {port}",
                    scenario)
        self.syslog(host, end + timedelta(milliseconds=2), sshd,
                    f"pam_unix(sshd:session): session closed for user {user}", scenario)
        self.syslog(host, end + timedelta(milliseconds=9), "systemd-logind[612]",
                    f"Session {sid} logged out. Waiting for processes to exit.", scenario)
        self.syslog(host, end + timedelta(milliseconds=15), "systemd-logind[612]", f"Removed session {sid}.",
                    scenario)
        return end

    # ---- auditd (db-01) ------------------------------------------------------------------

    def audit(self, ts: datetime, rtype: str, body: str, enriched: str, scenario: str | None) -> None:
        """One audit.log record of db-01; its serial is a placeholder until :func:`_renumber`."""
        ts = _trunc(ts, "ms")
        self._tokens += 1
        serial = f"\x01A{self._prefix}{self._tokens}\x02"
        sec = (ts - _EPOCH) // timedelta(seconds=1)
        line = f"node=db-01 type={rtype} msg=audit({sec}.{ts.microsecond // 1000:03d}:{serial}): {body}\x1d{enriched}"
        self._emit(line.encode(), AUDITD, SRC_DB_AUDIT, scenario, ts)

    def audit_session(self, ts: datetime, opened: datetime, end: datetime, user: str, uid: int, ip: str, pid: str,
                      ses: str, method: str, cmds: list[tuple[datetime, str, str]], scenario: str | None) -> None:
        """What auditd records of an SSH session (sshd's PAM stack and sudo's), as Debian 12 writes it."""
        ms = timedelta(milliseconds=1)
        unset = 'UID="root" AUID="unset"'
        mine = f'UID="root" AUID="{user}"'
        pre = f"pid={pid} uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='"
        sess = f"pid={pid} uid=0 auid={uid} ses={ses} subj=unconfined msg='"
        ssh = f'exe="/usr/sbin/sshd" hostname={ip} addr={ip} terminal=ssh res=success\''
        if method == "publickey":
            self.audit(ts - 3 * ms, "USER_AUTH", f'{pre}op=pubkey_auth grantors=auth-key acct="{user}" {ssh}',
                       unset, scenario)
        else:
            self.audit(ts - 3 * ms, "USER_AUTH", f'{pre}op=PAM:authentication grantors=pam_permit,pam_unix '
                       f'acct="{user}" {ssh}', unset, scenario)
        self.audit(ts - 2 * ms, "USER_ACCT", f'{pre}op=PAM:accounting grantors=pam_permit acct="{user}" {ssh}',
                   unset, scenario)
        self.audit(opened - ms, "USER_START", f'{sess}op=PAM:session_open grantors=pam_selinux,pam_loginuid,'
                   f'pam_keyinit,pam_permit,pam_umask,pam_unix,pam_systemd,pam_mail,pam_limits,pam_env '
                   f'acct="{user}" {ssh}', mine, scenario)
        self.audit(opened + 40 * ms, "USER_LOGIN", f'{sess}op=login id={uid} exe="/usr/sbin/sshd" hostname=? '
                   f"addr={ip} terminal=/dev/pts/0 res=success'", f'{mine} ID="{user}"', scenario)
        for tc, _target, cmd in cmds:
            enc = cmd.encode().hex().upper() if any(ch in cmd for ch in ' "\'') else f'"{cmd}"'
            self.audit(tc, "USER_CMD", f"pid={self.pid('db-01')} uid={uid} auid={uid} ses={ses} subj=unconfined "
                       f"msg='cwd=\"/home/{user}\" cmd={enc} exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'",
                       f'UID="{user}" AUID="{user}"', scenario)
        self.audit(end + 2 * ms, "USER_END", f'{sess}op=PAM:session_close grantors=pam_selinux,pam_loginuid,'
                   f'pam_keyinit,pam_permit,pam_umask,pam_unix,pam_systemd,pam_mail,pam_limits,pam_env '
                   f'acct="{user}" {ssh}', mine, scenario)
        self.audit(end + 3 * ms, "USER_LOGOUT", f'{sess}op=login id={uid} exe="/usr/sbin/sshd" hostname=? '
                   f"addr={ip} terminal=/dev/pts/0 res=success'", f'{mine} ID="{user}"', scenario)

    def sudo(self, host: str, ts: datetime, user: str, uid: int, target: str, cmd: str, r: random.Random,
             scenario: str | None) -> None:
        self.syslog(host, ts, "sudo", f"{user:>8} : TTY=pts/{r.randint(0, 4)} ; PWD=/home/{user} ; USER={target} ; "
                    f"COMMAND={cmd}", scenario)
        tuid = {"root": 0, "postgres": 108}.get(target, 1000)
        ts2 = ts + timedelta(milliseconds=r.randint(3, 12))
        self.syslog(host, ts2, "sudo", f"pam_unix(sudo:session): session opened for user {target}(uid={tuid}) by "
                    f"{user}(uid={uid})", scenario)
        self.syslog(host, ts2 + timedelta(seconds=r.uniform(0.2, 20)), "sudo",
                    f"pam_unix(sudo:session): session closed for user {target}", scenario)

    def ssh_failed(self, r: random.Random, host: str, ts: datetime, user: str, ip: str, *, valid: bool,
                   scenario: str) -> datetime:
        """One brute-force attempt on its own connection, as OpenSSH 9 and PAM log it."""
        pid = self.pid(host, r)
        port = r.randint(32768, 60999)
        sshd = f"sshd[{pid}]"
        t = ts
        if not valid:
            self.syslog(host, t, sshd, f"Invalid user {user} from {ip} port {port}", scenario)
            t += timedelta(milliseconds=r.randint(200, 900))
            self.syslog(host, t, sshd, "pam_unix(sshd:auth): check pass; user unknown", scenario)
            self.syslog(host, t, sshd, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
                        f"ruser= rhost={ip}", scenario)
        else:
            t += timedelta(milliseconds=r.randint(200, 900))
            self.syslog(host, t, sshd, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
                        f"ruser= rhost={ip}  user={user}", scenario)
        t += timedelta(seconds=r.uniform(1.5, 2.6))
        inv = "" if valid else "invalid user "
        self.syslog(host, t, sshd, f"Failed password for {inv}{user} from {ip} port {port} ssh2", scenario)
        t += timedelta(milliseconds=r.randint(100, 400))
        self.syslog(host, t, sshd, f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]", scenario)
        who = "authenticating user" if valid else "invalid user"
        self.syslog(host, t + timedelta(microseconds=150), sshd, f"Disconnected from {who} {user} {ip} port {port} "
                    "[preauth]", scenario)
        return t

    # ---- CRM (nginx) --------------------------------------------------------------------

    def crm_login(self, r: random.Random, ts: datetime, u: DemoUser, ip: str, ua: str | None = None,
                  scenario: str | None = None) -> datetime:
        ua = ua or u.user_agent
        base = f"https://{self.c.crm_host}"
        t = ts
        self.http(t, ip, None, "GET", "/login", 200, r.randint(3900, 4200), None, ua, scenario)
        t += timedelta(seconds=r.uniform(4, 15))
        self.http(t, ip, None, "POST", "/login", 302, 0, f"{base}/login", ua, scenario)
        t += timedelta(milliseconds=r.randint(80, 300))
        self.http(t, ip, u.username, "GET", "/customers", 200, r.randint(5200, 5600), f"{base}/login", ua, scenario)
        self.static(r, t, ip, ua, f"{base}/customers", scenario)
        return t + timedelta(seconds=r.uniform(2, 10))

    def static(self, r: random.Random, ts: datetime, ip: str, ua: str, ref: str, scenario: str | None = None,
               ) -> None:
        cached = r.random() < 0.6
        for path, size in (("/static/js/app.4f9a1c2e.js", 412733), ("/static/css/app.8b2d4e71.css", 58211),
                           ("/static/img/logo-zorgwijk.svg", 6140), ("/favicon.ico", 1150)):
            ts += timedelta(milliseconds=r.randint(10, 120))
            self.http(ts, ip, None, "GET", path, 304 if cached else 200, 0 if cached else size, ref, ua, scenario)

    def customer_id(self, r: random.Random) -> int:
        return r.randint(*self.c.customer_ids)

    def crm_case(self, r: random.Random, t: datetime, u: DemoUser, ip: str) -> datetime:
        """One piece of work on one customer (support, finance, DPO): a few requests."""
        base = f"https://{self.c.crm_host}"
        ua = u.user_agent
        cid = self.customer_id(r)
        ref = f"{base}/customers"
        if r.random() < 0.4 or u.role == "dpo":
            q = r.choice(_SEARCHES)
            self.http(t, ip, u.username, "GET", f"/api/customers/search?q={q}", 200, r.randint(900, 7800), ref, ua)
            t += timedelta(seconds=r.uniform(3, 25))
        if u.role == "finance" and r.random() < 0.65:
            inv = r.randint(700000, 799999)
            self.http(t, ip, u.username, "GET", f"/api/invoices/{inv}", 200, r.randint(1400, 3100), ref, ua)
            t += timedelta(seconds=r.uniform(10, 90))
            if r.random() < 0.5:
                return t
        status = 404 if r.random() < 0.01 else 200
        self.http(t, ip, u.username, "GET", f"/api/customers/{cid}", status,
                  r.randint(2100, 4800) if status == 200 else 61, ref, ua)
        if status == 404:
            return t
        cref = f"{base}/customers/{cid}"
        for _ in range(r.choice((0, 1, 1, 2, 2, 3))):
            t += timedelta(seconds=r.uniform(4, 70))
            x = r.random()
            claims = u.claims_at(t)
            if (u.role == "support" and claims and x < 0.35) or (u.role == "dpo" and x < 0.3):
                self.http(t, ip, u.username, "GET", f"/api/customers/{cid}/medical", 200, r.randint(1800, 9500), cref,
                          ua)
            elif u.role == "support" and not claims and x < 0.01:
                self.http(t, ip, u.username, "GET", f"/api/customers/{cid}/medical", 403, 87, cref, ua)
            elif x < 0.6:
                self.http(t, ip, u.username, "GET", f"/api/invoices/{r.randint(700000, 799999)}", 200,
                          r.randint(1400, 3100), cref, ua)
            elif x < 0.85:
                self.http(t, ip, u.username, "GET", f"/api/customers/{cid}/notes", 200, r.randint(300, 5200), cref, ua)
            elif x < 0.93 and u.role == "support":
                self.http(t, ip, u.username, "POST", f"/api/customers/{cid}/notes", 201, 96, cref, ua)
            else:
                self.http(t, ip, u.username, "PUT", f"/api/customers/{cid}", 204, 0, cref, ua)
        return t

    # ---- Okta ---------------------------------------------------------------------------

    def okta(self, ts: datetime, event_type: str, actor: DemoUser | dict[str, Any], place: Place, r: random.Random,
             *, outcome: str = "SUCCESS", reason: str | None = None, target: list[dict[str, Any]] | None = None,
             display: str = "", legacy: str | None = None, ua: int | None = None, session: str | None = None,
             severity: str = "INFO", scenario: str | None = None, debug: dict[str, Any] | None = None) -> None:
        """One System Log event. ``actor`` is a person, or the actor object itself (an unknown user name)."""
        ts = _trunc(ts, "ms")
        if isinstance(actor, DemoUser):
            b = _BROWSERS[actor.browser if ua is None else ua]
            actor_obj: dict[str, Any] = {"id": actor.okta_id, "type": "User", "alternateId": actor.email,
                                         "displayName": actor.full_name, "detailEntry": None}
        else:
            b = _BROWSERS[ua or 0]
            actor_obj = actor
        geo = {"city": place.city, "state": place.state, "country": place.country, "postalCode": place.postal_code,
               "geolocation": {"lat": place.lat, "lon": place.lon}}
        obj: dict[str, Any] = {
            "actor": actor_obj,
            "client": {"userAgent": {"rawUserAgent": b[0], "os": b[1], "browser": b[2]}, "zone": "null",
                       "device": "Computer", "id": None, "ipAddress": place.ip, "geographicalContext": geo},
            "device": None,
            "authenticationContext": {"authenticationProvider": None, "credentialProvider": None,
                                      "credentialType": None, "issuer": None, "interface": None,
                                      "authenticationStep": 0,
                                      "externalSessionId": session or "102" + _rid(r, 22)},
            "displayMessage": display,
            "eventType": event_type,
            "outcome": {"result": outcome, "reason": reason},
            "published": _iso_z(ts, ms=True),
            "securityContext": {"asNumber": place.asn, "asOrg": place.isp.split()[0].strip(",.").lower(),
                                "isp": place.isp, "domain": None, "isProxy": False},
            "severity": severity,
            "debugContext": {"debugData": {"requestId": _rid(r, 27), "dtHash": _rid(r, 64, "0123456789abcdef"),
                                           **(debug or {})}},
            "legacyEventType": legacy,
            "transaction": {"type": "WEB", "id": _rid(r, 27), "detail": {}},
            "uuid": _uuid(r),
            "version": "0",
            "request": {"ipChain": [{"ip": place.ip, "geographicalContext": geo, "version": "V4", "source": None}]},
            "target": target or [],
        }
        self.json(OKTA, SRC_OKTA, ts, obj, scenario)

    def okta_login(self, r: random.Random, ts: datetime, u: DemoUser, place: Place, apps: Iterable[str],
                   scenario: str | None = None, typo: bool = False, mfa_retry: bool = False) -> tuple[datetime, str]:
        session = "102" + _rid(r, 22)
        t = ts
        if typo:
            self.okta(t, "user.session.start", u, place, r, outcome="FAILURE", reason="INVALID_CREDENTIALS",
                      display="User login to Okta", legacy="core.user_auth.login_failed", scenario=scenario)
            t += timedelta(seconds=r.uniform(6, 20))
        if mfa_retry:
            self.okta(t, "user.authentication.auth_via_mfa", u, place, r, outcome="FAILURE",
                      reason="INVALID_CREDENTIALS", display="Authentication of user via MFA", session=session,
                      target=[_factor(u)], scenario=scenario)
            t += timedelta(seconds=r.uniform(8, 30))
        self.okta(t, "user.authentication.auth_via_mfa", u, place, r, display="Authentication of user via MFA",
                  session=session, target=[_factor(u)], legacy="core.user.factor.attempt_success", scenario=scenario)
        t += timedelta(milliseconds=r.randint(300, 1500))
        self.okta(t, "user.session.start", u, place, r, display="User login to Okta",
                  legacy="core.user_auth.login_success", session=session, scenario=scenario)
        for app in apps:
            t += timedelta(seconds=r.uniform(1, 6))
            self.okta_sso(r, t, u, place, app, session, scenario)
        return t, session

    def okta_sso(self, r: random.Random, t: datetime, u: DemoUser, place: Place, app: str, session: str,
                 scenario: str | None = None) -> None:
        self.okta(t, "user.authentication.sso", u, place, r, display="User single sign on to app", session=session,
                  legacy="app.auth.sso", scenario=scenario,
                  target=[{"id": "0oa" + _hid("app", app, 17), "type": "AppInstance", "alternateId": app,
                           "displayName": _APPS[app], "detailEntry": {"signOnModeType": "SAML_2_0"}},
                          {"id": "0ua" + _hid("appuser", app + u.username, 17), "type": "AppUser",
                           "alternateId": u.email, "displayName": u.full_name, "detailEntry": None}])

    # ---- Entra ID -----------------------------------------------------------------------

    def entra(self, r: random.Random, ts: datetime, u: DemoUser, place: Place, app: str, *, code: int = 0,
              mfa: str | None = None, ua: str | None = None, device: bool = True,
              scenario: str | None = None) -> None:
        """One interactive sign-in of ``u`` to a Microsoft 365 app, as the diagnostic settings export it.

        ``code`` is the result (0, 50126 wrong password, 50074 MFA still required); ``mfa`` the second
        factor of a successful sign-in (``"Mobile app notification"``), else the MFA claim of the
        session is reused (``Previously satisfied``). ``device`` adds the person's managed laptop
        (``deviceDetail``); a sign-in from somebody else's machine has none.
        """
        ts = _trunc(ts, "us")
        app_id, resource, resource_id, client = _ENTRA_APPS[app]
        agent = ua or (_TEAMS_UA if client != "Browser" else u.user_agent)
        _, os_name, browser = _BROWSERS[u.browser]
        windows = os_name.startswith("Windows")
        corr = _uuid(r)
        ok = code == 0
        steps: list[dict[str, Any]] = []
        if code == 50126:
            steps.append({"authenticationStepDateTime": _entra_ts(ts), "authenticationMethod": "Password",
                          "authenticationMethodDetail": "Password in the cloud", "succeeded": False,
                          "authenticationStepResultDetail": "Invalid username or password or Invalid on-premise "
                          "username or password.", "authenticationStepRequirement": "Primary authentication"})
        elif code == 50074 or mfa:
            steps.append({"authenticationStepDateTime": _entra_ts(ts), "authenticationMethod": "Password",
                          "authenticationMethodDetail": "Password in the cloud", "succeeded": True,
                          "authenticationStepResultDetail": "Correct password",
                          "authenticationStepRequirement": "Primary authentication"})
            if mfa and ok:
                steps.append({"authenticationStepDateTime": _entra_ts(ts), "authenticationMethod": mfa,
                              "authenticationMethodDetail": "Microsoft Authenticator", "succeeded": True,
                              "authenticationStepResultDetail": "MFA successfully completed",
                              "authenticationStepRequirement": "Multi-factor authentication"})
        else:
            steps.append({"authenticationStepDateTime": _entra_ts(ts), "authenticationMethod": "Previously satisfied",
                          "succeeded": True, "authenticationStepResultDetail": "First factor requirement satisfied "
                          "by claim in the token", "authenticationStepRequirement": "Primary authentication"})
        status: dict[str, Any] = {"errorCode": code}
        if not ok:
            status["failureReason"] = _ENTRA_ERRORS[code]
            if code == 50074:
                status["additionalDetails"] = "MFA required in Azure AD"
        elif mfa:
            status["additionalDetails"] = "MFA completed in Azure AD"
        else:
            status["additionalDetails"] = "MFA requirement satisfied by claim in the token"
        dev: dict[str, Any] = {"deviceId": "", "operatingSystem": os_name.replace(" ", ""),
                               "browser": _ENTRA_BROWSERS[browser] if client == "Browser" else "Rich Client 5.2.2",
                               "isCompliant": False, "isManaged": False}
        if device and windows:
            dev.update({"deviceId": _guid("device", u.username), "displayName": _laptop(u), "isCompliant": True,
                        "isManaged": True, "trustType": "Azure AD joined"})
        policy = {"id": _guid("ca", "mfa-all"), "displayName": "Require MFA for all users",
                  "enforcedGrantControls": ["Mfa"], "enforcedSessionControls": [],
                  "result": "success" if ok else "notApplied"}
        props: dict[str, Any] = {
            "id": _uuid(r), "createdDateTime": _entra_ts(ts, "+00:00"), "userDisplayName": u.full_name,
            "userPrincipalName": u.email, "userId": _guid("entra-user", u.username), "appId": app_id,
            "appDisplayName": app, "ipAddress": place.ip, "status": status, "clientAppUsed": client,
            "userAgent": agent, "deviceDetail": dev,
            "location": {"city": place.city, "state": place.state, "countryOrRegion": place.country_iso,
                         "geoCoordinates": {"latitude": place.lat, "longitude": place.lon}},
            "correlationId": corr, "conditionalAccessStatus": "success" if ok else "notApplied",
            "appliedConditionalAccessPolicies": [policy], "originalRequestId": _uuid(r), "isInteractive": True,
            "tokenIssuerName": "", "tokenIssuerType": "AzureAD", "authenticationProtocol": "none",
            "processingTimeInMilliseconds": r.randint(60, 420), "riskDetail": "none",
            "riskLevelAggregated": "none", "riskLevelDuringSignIn": "none", "riskState": "none",
            "riskEventTypes_v2": [], "resourceDisplayName": resource, "resourceId": resource_id,
            "resourceTenantId": self.c.entra_tenant_id, "homeTenantId": self.c.entra_tenant_id,
            "authenticationDetails": steps, "authenticationRequirement":
                "multiFactorAuthentication" if ok or code == 50074 else "singleFactorAuthentication",
            "userType": "Member", "crossTenantAccessType": "none", "incomingTokenType": "none",
        }
        obj: dict[str, Any] = {
            "time": _entra_ts(ts), "resourceId": f"/tenants/{self.c.entra_tenant_id}/providers/Microsoft.aadiam",
            "operationName": "Sign-in activity", "operationVersion": "1.0", "category": "SignInLogs",
            "tenantId": self.c.entra_tenant_id, "resultType": str(code), "resultSignature": "None",
            "resultDescription": "" if ok else _ENTRA_ERRORS[code], "durationMs": 0,
            "callerIpAddress": place.ip, "correlationId": corr, "identity": u.full_name, "Level": 4,
            "location": place.country_iso, "properties": props,
        }
        self.json(ENTRA, SRC_ENTRA, ts, obj, scenario)

    def squid(self, ts: datetime, elapsed_ms: int, client: str, code: str, status: int, size: int, method: str,
              url: str, user: str | None, hier: str, peer: str | None, mime: str,
              scenario: str | None = None) -> None:
        """A line of the office proxy's access.log (``logformat squid``, the default): logged when
        the transaction ends, ``elapsed_ms`` after it began."""
        ts = _trunc(ts, "ms")
        ms = _epoch_ms(ts)
        line = (f"{ms // 1000}.{ms % 1000:03d} {elapsed_ms:6d} {client} {code}/{status:03d} {size} {method} {url} "
                f"{user or '-'} {hier}/{peer or '-'} {mime}")
        self._emit(line.encode(), SQUID, SRC_PROXY, scenario, ts)

    def box(self, r: random.Random, ts: datetime, u: DemoUser, ip: str, session: str, event_type: str,
            source: dict[str, Any], details: dict[str, Any] | None, scenario: str | None = None) -> None:
        """An event of the Box enterprise's admin_logs stream (``GET /2.0/events?stream_type=admin_logs``),
        times in the enterprise's zone (Europe/Amsterdam), to the second."""
        ts = _trunc(ts, "s")
        recorded = ts + timedelta(seconds=r.randint(0, 3))
        obj: dict[str, Any] = {
            "type": "event", "event_id": _uuid(r), "created_by": _box_user(u),
            "created_at": ts.astimezone(AMSTERDAM).isoformat(),
            "recorded_at": recorded.astimezone(AMSTERDAM).isoformat(),
            "event_type": event_type, "session_id": session, "ip_address": ip, "source": source,
            "additional_details": details, "action_by": None}
        self.json(BOX, SRC_BOX, ts, obj, scenario)

    # ---- Google Cloud and Workspace -----------------------------------------------------

    def gcp(self, r: random.Random, ts: datetime, principal: str, ip: str, ua: str, service: str,
                 method: str, resource_name: str, permission: str, *, log: str = "data_access",
                 auth_resource: str | None = None, resource: tuple[str, dict[str, str]] | None = None,
                 key: str | None = None, metadata: dict[str, Any] | None = None, location: bool = False,
                 scenario: str | None = None) -> None:
        """One Cloud Audit Logs entry of the analytics project, as a log sink exports it (a LogEntry
        with an AuditLog ``protoPayload``; ``log`` is activity or data_access)."""
        ts = _trunc(ts, "us")
        c = self.c
        authn: dict[str, Any] = {"principalEmail": principal}
        if key:
            authn["serviceAccountKeyName"] = key
        pp: dict[str, Any] = {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog", "status": {}, "authenticationInfo": authn,
            "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": ua,
                                "requestAttributes": {"time": _gcp_ts(ts - timedelta(milliseconds=r.randint(5, 60))),
                                                      "auth": {}},
                                "destinationAttributes": {}},
            "serviceName": service, "methodName": method,
            "authorizationInfo": [{"resource": auth_resource or f"projects/{c.gcp_project}", "permission": permission,
                                   "granted": True, "resourceAttributes": {}}],
            "resourceName": resource_name,
        }
        if location:
            pp["resourceLocation"] = {"currentLocations": [c.gcp_location]}
        if metadata:
            pp["metadata"] = metadata
        rtype, rlabels = resource or ("bigquery_project", {"location": c.gcp_location})
        obj = {
            "protoPayload": pp, "insertId": _rid(r, 12, _LOWER),
            "resource": {"type": rtype, "labels": {**rlabels, "project_id": c.gcp_project}},
            "timestamp": _gcp_ts(ts), "severity": "NOTICE" if log == "activity" else "INFO",
            "logName": f"projects/{c.gcp_project}/logs/cloudaudit.googleapis.com%2F{log}",
            "receiveTimestamp": _gcp_ts(ts + timedelta(microseconds=r.randint(120_000, 900_000)), r.randint(0, 999)),
        }
        self.json(GCP, SRC_GCP, ts, obj, scenario)


    def gworkspace(self, r: random.Random, ts: datetime, u: DemoUser, ip: str, app: str, etype: str,
                        name: str, params: list[dict[str, Any]], scenario: str | None = None) -> None:
        """One Google Workspace activity of ``u`` as the Reports API returns it (``activities.list``),
        one activity a line."""
        ts = _trunc(ts, "ms")
        obj = {
            "kind": "admin#reports#activity",
            "id": {"time": _iso_z(ts, ms=True), "uniqueQualifier": str(r.randint(-(2 ** 63), 2 ** 63 - 1)),
                   "applicationName": app, "customerId": self.c.gworkspace_customer_id},
            "etag": f'"{_rid(r, 43, _B62 + "-_")}/{_rid(r, 27, _B62 + "-_")}"',
            "actor": {"callerType": "USER", "email": u.email, "profileId": _profile_id(u.username)},
            "ipAddress": ip,
            "events": [{"type": etype, "name": name, "parameters": params}],
        }
        self.json(GWORKSPACE, SRC_GWORKSPACE, ts, obj, scenario)

    # ---- CloudTrail ---------------------------------------------------------------------

    def _ct_base(self, r: random.Random, ts: datetime, identity: dict[str, Any], source: str, name: str, ip: str,
                 ua: str, req: Any, resp: Any, *, read_only: bool, data: bool = False) -> dict[str, Any]:
        return {
            "eventVersion": "1.10" if data else "1.09",
            "userIdentity": identity,
            "eventTime": _iso_z(ts),
            "eventSource": source,
            "eventName": name,
            "awsRegion": self.c.aws_region,
            "sourceIPAddress": ip,
            "userAgent": ua,
            "requestParameters": req,
            "responseElements": resp,
            "requestID": _rid(r, 16, "0123456789ABCDEF") if data else _uuid(r),
            "eventID": _uuid(r),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": not data,
            "recipientAccountId": self.c.aws_account_id,
            "eventCategory": "Data" if data else "Management",
        }

    def iam_user(self, username: str, *, console_mfa: bool | None = None) -> dict[str, Any]:
        acct = self.c.aws_account_id
        ident: dict[str, Any] = {"type": "IAMUser", "principalId": "AIDA" + _hid("aida", username, 17, _UPPER),
                                 "arn": f"arn:aws:iam::{acct}:user/{username}", "accountId": acct,
                                 "userName": username}
        if console_mfa is not None:
            ident["accessKeyId"] = "ASIA" + _hid("console", username, 16, _UPPER)
            ident["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {},
                                       "attributes": {"creationDate": None,
                                                      "mfaAuthenticated": "true" if console_mfa else "false"}}
        return ident

    def assumed(self, role: str, session: str, created: datetime, mfa: bool = True) -> dict[str, Any]:
        acct = self.c.aws_account_id
        rid = "AROA" + _hid("aroa", role, 17, _UPPER)
        return {"type": "AssumedRole", "principalId": f"{rid}:{session}",
                "arn": f"arn:aws:sts::{acct}:assumed-role/{role}/{session}", "accountId": acct,
                "accessKeyId": "ASIA" + _hid("sts", role + session + created.isoformat(), 16, _UPPER),
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": rid, "arn": f"arn:aws:iam::{acct}:role/{role}",
                                      "accountId": acct, "userName": role},
                    "webIdFederationData": {},
                    "attributes": {"creationDate": _iso_z(created), "mfaAuthenticated": "true" if mfa else "false"}}}

    def console_login(self, r: random.Random, ts: datetime, username: str, ip: str, ua: str, *, mfa: bool,
                      success: bool = True, scenario: str | None = None) -> None:
        ts = _trunc(ts, "s")
        acct = self.c.aws_account_id
        extra: dict[str, Any] = {
            "LoginTo": f"https://{self.c.aws_region}.console.aws.amazon.com/console/home?region={self.c.aws_region}"
                       "&state=hashArgs%23&isauthcode=true",
            "MobileVersion": "No", "MFAUsed": "Yes" if mfa else "No"}
        if mfa:
            extra["MFAIdentifier"] = f"arn:aws:iam::{acct}:mfa/{username}-yubikey"
        obj = self._ct_base(r, ts, self.iam_user(username), "signin.amazonaws.com", "ConsoleLogin", ip, ua, None,
                            {"ConsoleLogin": "Success" if success else "Failure"}, read_only=False)
        obj["additionalEventData"] = extra
        obj["eventType"] = "AwsConsoleSignIn"
        obj["requestID"] = None
        if not success:
            obj["errorMessage"] = "Failed authentication"
        obj["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                             "clientProvidedHostHeader": "signin.aws.amazon.com"}
        self.json(CLOUDTRAIL, SRC_CLOUDTRAIL, ts, obj, scenario)

    def assume_role(self, r: random.Random, ts: datetime, username: str, role: str, ip: str, ua: str) -> dict[str, Any]:
        ts = _trunc(ts, "s")
        acct = self.c.aws_account_id
        ident = self.assumed(role, username, ts)
        req = {"roleArn": f"arn:aws:iam::{acct}:role/{role}", "roleSessionName": username, "durationSeconds": 3600,
               "serialNumber": f"arn:aws:iam::{acct}:mfa/{username}-yubikey"}
        resp = {"credentials": {"accessKeyId": ident["accessKeyId"], "sessionToken": "<redacted>",
                                "expiration": _aws_expiry(ts + timedelta(hours=1))},
                "assumedRoleUser": {"assumedRoleId": ident["principalId"], "arn": ident["arn"]}}
        obj = self._ct_base(r, ts, self.iam_user(username), "sts.amazonaws.com", "AssumeRole", ip, ua, req, resp,
                            read_only=True)
        obj["resources"] = [{"accountId": acct, "type": "AWS::IAM::Role", "ARN": f"arn:aws:iam::{acct}:role/{role}"}]
        self.json(CLOUDTRAIL, SRC_CLOUDTRAIL, ts, obj, None)
        return ident

    def api(self, r: random.Random, ts: datetime, ident: dict[str, Any], ip: str, ua: str, call: str,
            scenario: str | None = None, *, bucket: str | None = None, key: str | None = None,
            size: int | None = None, vpce: bool = False) -> None:
        ts = _trunc(ts, "s")
        service, name = call.split(":")
        acct = self.c.aws_account_id
        if service == "s3" and name in ("GetObject", "PutObject", "ListObjects", "HeadObject"):
            assert bucket is not None
            req: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.{self.c.aws_region}.amazonaws.com"}
            res: list[dict[str, Any]] = [
                {"accountId": acct, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
            if name == "ListObjects":
                req.update({"list-type": "2", "prefix": key or "", "delimiter": "/", "encoding-type": "url"})
            else:
                req["key"] = key
                res.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
            obj = self._ct_base(r, ts, ident, "s3.amazonaws.com", name, ip, ua, req, None,
                                read_only=name != "PutObject", data=True)
            xfer = size if size is not None else r.randint(2_000, 900_000)
            obj["additionalEventData"] = {
                "SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": xfer if name == "PutObject" else 0,
                "AuthenticationMethod": "AuthHeader", "x-amz-id-2": _rid(r, 56),
                "bytesTransferredOut": 0 if name == "PutObject" else (xfer if name == "GetObject" else 1350)}
            obj["resources"] = res
            obj["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                 "clientProvidedHostHeader": req["Host"]}
            if vpce:
                obj["vpcEndpointId"] = "vpce-0a1b2c3d4e5f60718"
                obj["vpcEndpointAccountId"] = acct
        else:
            params: dict[str, Any] | None = {
                "DescribeInstances": {"instancesSet": {}, "filterSet": {}},
                "DescribeSecurityGroups": {"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}},
                "DescribeVolumes": {"volumeSet": {}, "filterSet": {}},
                "DescribeDBInstances": None,
                "ListBuckets": None,
                "GetCallerIdentity": None,
                "ListUsers": None,
                "GetAccountSummary": None,
                "DescribeLogGroups": {"limit": 50},
                "GetMetricData": None,
            }.get(name)
            host = {"ec2": "ec2", "rds": "rds", "s3": "s3", "sts": "sts", "iam": "iam", "logs": "logs",
                    "monitoring": "monitoring"}[service]
            obj = self._ct_base(r, ts, ident, f"{host}.amazonaws.com", name, ip, ua, params, None, read_only=True)
            if service == "iam":
                obj["awsRegion"] = "us-east-1"
        self.json(CLOUDTRAIL, SRC_CLOUDTRAIL, ts, obj, scenario)

    def ct(self, r: random.Random, ts: datetime, ident: dict[str, Any], ip: str, ua: str, call: str,
           req: Any = None, resp: Any = None, *, error: str | None = None, read_only: bool = False,
           scenario: str | None = None) -> None:
        """Any management API call (``iam:AttachUserPolicy``...); ``error`` makes it a refused call."""
        ts = _trunc(ts, "s")
        service, name = call.split(":")
        obj = self._ct_base(r, ts, ident, f"{service}.amazonaws.com", name, ip, ua, req, resp, read_only=read_only)
        if service == "iam":
            obj["awsRegion"] = "us-east-1"
        if error:
            obj["errorCode"] = error
            obj["errorMessage"] = f"User: {ident.get('arn')} is not authorized to perform: {call}"
            obj["responseElements"] = None
        self.json(CLOUDTRAIL, SRC_CLOUDTRAIL, ts, obj, scenario)

    def aws_service_assume(self, r: random.Random, ts: datetime, role: str, instance: str) -> None:
        ts = _trunc(ts, "s")
        acct = self.c.aws_account_id
        req = {"roleArn": f"arn:aws:iam::{acct}:role/{role}", "roleSessionName": instance}
        resp = {"credentials": {"accessKeyId": "ASIA" + _rid(r, 16, _UPPER), "sessionToken": "<redacted>",
                                "expiration": _aws_expiry(ts + timedelta(hours=6))}}
        obj = self._ct_base(r, ts, {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, "sts.amazonaws.com",
                            "AssumeRole", "ec2.amazonaws.com", "ec2.amazonaws.com", req, resp, read_only=True)
        obj["sharedEventID"] = _uuid(r)
        obj["resources"] = [{"accountId": acct, "type": "AWS::IAM::Role", "ARN": f"arn:aws:iam::{acct}:role/{role}"}]
        self.json(CLOUDTRAIL, SRC_CLOUDTRAIL, ts, obj, None)

    # ---- GitHub -------------------------------------------------------------------------

    def gh(self, r: random.Random, ts: datetime, action: str, actor: DemoUser, place: Place, repo: str | None = None,
           scenario: str | None = None, **extra: Any) -> None:
        ts = _trunc(ts, "ms")
        ms = _epoch_ms(ts)
        obj: dict[str, Any] = {
            "@timestamp": ms,
            "_document_id": _rid(r, 22),
            "action": action,
            "actor": actor.github,
            "actor_id": 10_000_000 + actor.uid * 7919,
            "actor_ip": place.ip,
            "actor_location": {"country_code": place.country_iso},
            "business": "zorgwijk",
            "created_at": ms,
            "operation_type": _GH_OPS.get(action, "modify"),
            "org": self.c.github_org,
            "org_id": 91827364,
        }
        if repo:
            obj["repo"] = repo
            obj["repo_id"] = 600_000_000 + int(_hid("repo", repo, 6, "0123456789"))
            obj["repository"] = repo
            obj["repository_public"] = self.repo_public(repo, ts)
        if action.startswith("git."):
            obj["transport_protocol"] = 1
            obj["transport_protocol_name"] = "ssh"
            obj["user_agent"] = "git/2.47.1"
            obj["programmatic_access_type"] = "SSH key"
        else:
            obj["user_agent"] = _BROWSERS[actor.browser][0]
        obj.update(extra)
        self.json(GITHUB, SRC_GITHUB, ts, obj, scenario)

    def repo_public(self, repo: str, ts: datetime) -> bool:
        if _REPOS.get(repo) == "public":
            return True
        window = self.public_from.get(repo)
        return window is not None and window[0] <= ts and (window[1] is None or ts < window[1])


def _aws_expiry(ts: datetime) -> str:
    """STS credential expiry as CloudTrail writes it: ``Nov 2, 2026, 9:13:01 AM``."""
    u = ts.astimezone(UTC)
    hour = u.hour % 12 or 12
    ampm = "AM" if u.hour < 12 else "PM"
    return f"{_MON[u.month - 1]} {u.day}, {u.year}, {hour}:{u.minute:02d}:{u.second:02d} {ampm}"


def _exchange_cmdlet(r: random.Random, ts: datetime, user: str, op: str, ip: str,
                     params: list[tuple[str, str]]) -> dict[str, Any]:
    """A Microsoft 365 unified audit record of an Exchange admin cmdlet (RecordType 1)."""
    return {"CreationTime": ts.strftime("%Y-%m-%dT%H:%M:%S"), "Id": _uuid(r), "Operation": op,
            "OrganizationId": "7d1c7c1e-1f2a-4c55-9d8e-2f3b4a5c6d7e", "RecordType": 1, "ResultStatus": "True",
            "UserKey": f"1003{r.randrange(16**12):012X}", "UserType": 0, "Version": 1, "Workload": "Exchange",
            "ClientIP": f"{ip}:{r.randrange(20000, 60000)}", "ObjectId": user, "UserId": user,
            "ExternalAccess": False, "OrganizationName": "zorgwijk.onmicrosoft.com",
            "Parameters": [{"Name": k, "Value": v} for k, v in params]}


def _rid(r: random.Random, n: int, alphabet: str = _B62) -> str:
    return "".join(r.choices(alphabet, k=n))


def _uuid(r: random.Random) -> str:
    h = f"{r.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"


def _factor(u: DemoUser) -> dict[str, Any]:
    return {"id": "pfd" + _hid("factor", u.username, 17), "type": "AuthenticatorEnrollment",
            "alternateId": "unknown", "displayName": "Okta Verify", "detailEntry": {"methodTypeUsed": "Push"}}


def _guid(kind: str, key: str) -> str:
    """A stable GUID derived from a name (Entra object ids, device ids), not from the seed."""
    h = hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:32]}"


def _entra_ts(ts: datetime, zone: str = "Z") -> str:
    """Entra's timestamps: UTC with seven fractional digits (100 ns ticks)."""
    u = ts.astimezone(UTC)
    return f"{u:%Y-%m-%dT%H:%M:%S}.{u.microsecond:06d}0{zone}"


#: appDisplayName -> (appId, resourceDisplayName, resourceId, clientAppUsed): Microsoft's first-party ids
_ENTRA_APPS: dict[str, tuple[str, str, str, str]] = {
    "Microsoft Teams": ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams Services",
                        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe", "Mobile Apps and Desktop clients"),
    "OfficeHome": ("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca",
                   "Browser"),
    "One Outlook Web": ("9199bf20-a13f-4107-85dc-02114787ef48", "Office 365 Exchange Online",
                        "00000002-0000-0ff1-ce00-000000000000", "Browser"),
}
_ENTRA_ERRORS = {50126: "Error validating credentials due to invalid username or password.",
                 50074: "Strong Authentication is required."}
_ENTRA_BROWSERS = {"CHROME": "Chrome 142.0.0", "SAFARI": "Safari 26.1", "FIREFOX": "Firefox 145.0",
                   "EDGE_CHROMIUM": "Edge 142.0.0"}
_TEAMS_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 "
             "Safari/537.36 Edg/130.0.0.0 Teams/24295.605.3225.8804/49")


_APPS = {"Zorgwijk CRM": "SAML 2.0 App", "GitHub Enterprise Cloud - Organization": "GitHub",
         "Slack": "Slack", "Google Workspace": "Google Workspace", "AFAS Online": "AFAS HR",
         "Exact Online": "Exact Online", "Atlassian Cloud": "Jira"}
_ROLE_APPS: dict[str, tuple[str, ...]] = {
    "engineer": ("Slack", "GitHub Enterprise Cloud - Organization", "Atlassian Cloud"),
    "sre": ("Slack", "GitHub Enterprise Cloud - Organization", "Atlassian Cloud"),
    "support": ("Slack", "Zorgwijk CRM", "Google Workspace"),
    "hr": ("Slack", "AFAS Online", "Google Workspace"),
    "finance": ("Slack", "Exact Online", "Zorgwijk CRM", "Google Workspace"),
    "dpo": ("Slack", "Zorgwijk CRM", "Google Workspace"),
    "admin": ("Slack", "Google Workspace", "GitHub Enterprise Cloud - Organization", "Zorgwijk CRM"),
    "contractor": ("Slack", "GitHub Enterprise Cloud - Organization"),
}
_GH_OPS = {"git.clone": "access", "git.fetch": "access", "git.push": "modify", "repo.create": "create",
           "pull_request.create": "create", "pull_request.merge": "modify", "pull_request_review.submit": "create",
           "protected_branch.update": "modify", "protected_branch.create": "create", "repo.access": "modify",
           "team.add_member": "modify", "org.add_member": "create"}
_SEARCHES = ("de+vries", "jansen", "bakker", "visser", "smit", "meijer", "de+boer", "mulder", "de+groot", "bos",
             "vos", "peters", "hendriks", "van+leeuwen", "dekker", "brouwer", "de+wit", "dijkstra", "smits",
             "de+graaf", "van+der+meer", "kok", "jacobs", "de+haan", "vermeulen", "3511AB", "1012LG", "2311EZ",
             "van+den+heuvel", "schouten", "willems", "hoekstra", "koster", "prins", "huisman", "postma")
_CLI_UA = "aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-48-generic md/arch#x86_64 lang/python#3.12.6 " \
          "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off"
_CONSOLE_UA = "AWS Internal"
_BOTO_UA = "Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#6.1.0-26-cloud-amd64 md/arch#x86_64 " \
           "lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.54"
_SUDO_CMDS: dict[str, tuple[tuple[str, str], ...]] = {
    "bastion": (("root", "/usr/bin/systemctl status ssh"), ("root", "/usr/bin/journalctl -u ssh --since today"),
                ("root", "/usr/bin/apt-get upgrade -y")),
    "db-01": (("postgres", "/usr/bin/psql -c SELECT now()"), ("root", "/usr/bin/systemctl status postgresql@16-main"),
              ("postgres", "/usr/bin/psql -d crm -c \\dt+"), ("root", "/usr/bin/df -h /var/lib/postgresql")),
    "app-01": (("root", "/usr/bin/systemctl restart crm-api"), ("root", "/usr/bin/journalctl -u crm-api -n 200"),
               ("root", "/usr/bin/docker ps")),
}


# --------------------------------------------------------------------------------------------
# Benign traffic


@dataclass
class _Block:
    start: datetime
    end: datetime
    place: Place


def _plan(g: _Gen, u: DemoUser, day: date, r: random.Random) -> list[_Block]:
    """When and where a user works on a local day."""
    if not u.works_on(day) or day in g.away.get(u.username, ()):
        return []
    wd = day.weekday()
    place = r.choice(g.c.office) if r.random() < u.office_share else r.choice(u.homes)
    if u.night_shift:
        if wd > 3 or r.random() < 0.05:  # Mon-Thu nights
            return []
        s = 22 * H + r.gauss(0, 900)
        return [_Block(_at(day, s), _at(day, 30.5 * H + r.gauss(0, 900)), place)]
    if wd >= 5:
        if r.random() >= u.weekend:
            return []
        place = r.choice(u.homes)
        s = r.uniform(10, 20) * H
        return [_Block(_at(day, s), _at(day, s + r.uniform(0.3, 1.5) * H), place)]
    if wd in u.days_off or r.random() < 0.04:  # part-time day or a day off
        return []
    arrive = min(max(r.gauss(8.6, 0.55), 7.2), 10.5) * H
    leave = min(max(r.gauss(17.2, 0.6), 15.5), 19.0) * H
    if u.late and r.random() < 0.5:
        leave += r.uniform(0.5, 2.0) * H
    lunch = r.uniform(12.0, 12.8) * H
    blocks = [_Block(_at(day, arrive), _at(day, lunch), place),
              _Block(_at(day, lunch + r.uniform(0.4, 0.8) * H), _at(day, leave), place)]
    if u.late and r.random() < 0.25:
        s = r.uniform(20.5, 21.5) * H
        blocks.append(_Block(_at(day, s), _at(day, s + r.uniform(0.4, 1.2) * H), r.choice(u.homes)))
    return blocks


def _span(b: _Block) -> float:
    return max((b.end - b.start).total_seconds(), 60.0)


def _when(r: random.Random, b: _Block) -> datetime:
    return b.start + timedelta(seconds=r.uniform(0, _span(b)))


def _benign_people(g: _Gen) -> None:
    for u in g.c.users:
        r = g.rng(f"user:{u.username}")
        rk = g.rng(f"k8s:{u.username}")  # its own stream: the other logs stay as they were
        rm = g.rng(f"entra:{u.username}")  # likewise
        rg = g.rng(f"google:{u.username}")  # likewise
        rp = g.rng(f"proxy:{u.username}")  # likewise
        rx = g.rng(f"box:{u.username}")  # likewise
        for day in g.local_days:
            blocks = _plan(g, u, day, r)
            for i, b in enumerate(blocks):
                _okta_block(g, r, u, b, first=i == 0)
                _entra_block(g, rm, u, b, first=i == 0)
                if u.username in DATA_TEAM:
                    _google_block(g, rg, u, b, first=i == 0)
                _proxy_block(g, rp, u, b)
                if u.username in BOX_USERS:
                    _box_block(g, rx, u, b, first=i == 0)
                if u.role in ("support", "finance", "dpo", "admin"):
                    _crm_block(g, r, u, b, first=i == 0)
                if u.role in ("engineer", "sre", "admin", "contractor"):
                    _ssh_block(g, r, u, b)
                if u.role in ("engineer", "sre", "admin") or u.aws_console:
                    _aws_block(g, r, u, b)
                if u.role in ("engineer", "sre", "admin", "contractor"):
                    _github_block(g, r, u, b)
                if u.role in ("engineer", "sre"):
                    _k8s_block(g, rk, u, b)


def _okta_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block, first: bool) -> None:
    if not first and r.random() > 0.3:
        return
    apps = _ROLE_APPS[u.role] if first else r.sample(_ROLE_APPS[u.role], 1)
    _, session = g.okta_login(r, b.start - timedelta(seconds=r.uniform(20, 120)), u, b.place, apps,
                              typo=r.random() < 0.04, mfa_retry=r.random() < 0.03)
    for _ in range(r.randint(0, 2)):
        g.okta_sso(r, _when(r, b), u, b.place, r.choice(_ROLE_APPS[u.role]), session)
    if r.random() < 0.05 and first:
        tp = _when(r, b)
        g.okta(tp, "user.account.update_password", u, b.place, r, display="Update password for user",
               legacy="core.user.config.password_update.success",
               target=[{"id": u.okta_id, "type": "User", "alternateId": u.email, "displayName": u.full_name,
                        "detailEntry": None}])
        # Near miss: the phone's mail app keeps trying the old password until it is updated too.
        for _ in range(r.randint(2, 6)):
            tp += timedelta(seconds=r.uniform(90, 300))
            g.okta(tp, "user.session.start", u, b.place, r, outcome="FAILURE", reason="INVALID_CREDENTIALS",
                   display="User login to Okta", legacy="core.user_auth.login_failed", ua=1)
    if r.random() < 0.4:
        g.okta(b.end + timedelta(seconds=r.uniform(5, 300)), "user.session.end", u, b.place, r,
               display="User logout from Okta", legacy="core.user_auth.logout_success", session=session)


def _entra_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block, first: bool) -> None:
    """Microsoft 365 sign-ins at Entra ID: Teams on the laptop (the portal on a Mac or Linux) when the
    day starts, now and then Outlook on the web or the portal later, from where the person works.
    MFA is asked on about half the mornings, else the session's MFA claim is reused. Near misses:
    a mistyped password (50126) before the sign-in, the 50074 interrupt before the MFA prompt."""
    if not first and r.random() > 0.35:
        return
    t = b.start + timedelta(seconds=r.uniform(60, 900))
    if first:
        app = "Microsoft Teams" if _BROWSERS[u.browser][1].startswith("Windows") else "OfficeHome"
    else:
        app = r.choice(("One Outlook Web", "OfficeHome"))
    if r.random() < 0.04:
        g.entra(r, t, u, b.place, app, code=50126)
        t += timedelta(seconds=r.uniform(8, 40))
    mfa = first and r.random() < 0.5
    if mfa and r.random() < 0.3:
        g.entra(r, t, u, b.place, app, code=50074)
        t += timedelta(seconds=r.uniform(5, 25))
    g.entra(r, t, u, b.place, app, mfa="Mobile app notification" if mfa else None)


def _crm_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block, first: bool) -> None:
    t = b.start + timedelta(seconds=r.uniform(30, 400))
    if first or r.random() < 0.5:
        t = g.crm_login(r, t, u, b.place.ip)
    gap = {"support": 95.0, "finance": 420.0, "dpo": 1500.0, "admin": 5400.0}[u.role]
    last_static = t
    while True:
        t += timedelta(seconds=r.expovariate(1 / gap) + 10)
        if t >= b.end:
            break
        if (t - last_static).total_seconds() > 3600 and r.random() < 0.3:
            g.static(r, t, b.place.ip, u.user_agent, f"https://{g.c.crm_host}/customers")
            last_static = t
        t = g.crm_case(r, t, u, b.place.ip)
    if r.random() < 0.3:
        g.http(b.end, b.place.ip, u.username, "GET", "/logout", 302, 0, f"https://{g.c.crm_host}/customers",
               u.user_agent)


def _ssh_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block) -> None:
    n = {"engineer": (0, 2), "sre": (1, 4), "admin": (0, 1), "contractor": (0, 2)}[u.role]
    hours = _span(b) / H
    count = r.randint(*n) if hours > 1 or u.night_shift else r.randint(0, 1)
    if u.night_shift:
        count = r.randint(2, 5)
    for _ in range(count):
        ts = _when(r, b)
        method = "password" if u.ssh_password else "publickey"
        typos = 0
        if u.ssh_password and r.random() < 0.25:
            typos = r.choice((1, 1, 2))  # near miss: a typo or two, then success
        dur = r.uniform(120, 5400)
        sudo = [r.choice(_SUDO_CMDS["bastion"])] if u.role in ("sre", "admin") and r.random() < 0.3 else []
        g.ssh_session(r, "bastion", ts, u.username, u.uid, b.place.ip, method=method, duration=dur, typos=typos,
                      sudo=sudo)
        # hop from the bastion to an internal host
        if u.role in ("sre", "engineer", "contractor") and r.random() < (0.8 if u.role == "sre" else 0.4):
            host = r.choice(("db-01", "app-01")) if u.role == "sre" else "app-01"
            hs = ts + timedelta(seconds=r.uniform(20, 120))
            hd = r.uniform(60, max(90.0, dur - 200))
            cmds = r.sample(_SUDO_CMDS[host], r.randint(0, 2)) if u.role == "sre" else []
            g.ssh_session(r, host, hs, u.username, u.uid, g.c.host_ip("bastion"), duration=hd, sudo=cmds)


def _aws_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block) -> None:
    ip = b.place.ip
    if u.aws_console and r.random() < (0.45 if u.role in ("sre", "admin") else 0.35):
        t = _when(r, b)
        g.console_login(r, t, u.username, ip, u.user_agent, mfa=True)
        ident = g.iam_user(u.username, console_mfa=True)
        if u.role == "finance":
            day = t.astimezone(AMSTERDAM).date()
            calls = [("s3:ListBuckets", None, None), ("s3:ListObjects", "zorgwijk-customer-exports", "exports/"),
                     ("s3:GetObject", "zorgwijk-customer-exports", f"exports/{day - timedelta(days=1)}/"
                      "customers-delta.csv.gz")]
        elif u.role == "admin":
            calls = [(c, None, None) for c in ("iam:GetAccountSummary", "iam:ListUsers", "ec2:DescribeInstances")]
        else:
            calls = [(c, None, None) for c in r.choices(("ec2:DescribeInstances", "ec2:DescribeSecurityGroups",
                                                        "rds:DescribeDBInstances", "logs:DescribeLogGroups",
                                                        "monitoring:GetMetricData"), k=r.randint(2, 8))]
        for call, bucket, key in calls:
            t += timedelta(seconds=r.uniform(3, 90))
            g.api(r, t, ident, ip, _CONSOLE_UA if not call.startswith("s3") else "[S3Console/0.4, aws-internal/3]",
                  call, bucket=bucket, key=key)
    if u.role in ("engineer", "sre") and r.random() < (0.7 if u.role == "sre" else 0.35):
        t = _when(r, b)
        role = "ZorgwijkOps" if u.role == "sre" else "ZorgwijkEngineer"
        ident = g.assume_role(r, t, u.username, role, ip, _CLI_UA + " md/command#sts.assume-role")
        pool: tuple[tuple[str, str | None, str | None], ...] = (
                ("ec2:DescribeInstances", None, None), ("ec2:DescribeVolumes", None, None),
                ("sts:GetCallerIdentity", None, None), ("s3:ListObjects", "zorgwijk-artifacts", "releases/"),
                ("s3:GetObject", "zorgwijk-artifacts", "releases/crm-api-2026.11.1.tar.gz"),
                ("s3:PutObject", "zorgwijk-artifacts", "releases/crm-api-2026.11.2.tar.gz"))
        if u.role == "sre":
            pool += (("s3:ListObjects", "zorgwijk-backups", "db-01/"), ("s3:ListObjects", "zorgwijk-logs", "nginx/"),
                     ("s3:GetObject", "zorgwijk-logs", "nginx/access.log.1.gz"), ("rds:DescribeDBInstances", None,
                                                                                  None))
        for _ in range(r.randint(3, 20)):
            t += timedelta(seconds=r.expovariate(1 / 40))
            call, bucket, key = r.choice(pool)
            g.api(r, t, ident, ip, _CLI_UA, call, bucket=bucket, key=key)


def _github_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block) -> None:
    code = [repo for repo, _ in g.c.repos if repo not in ("zorgwijk/ops-runbooks",)]
    mine = code if u.role != "sre" else ["zorgwijk/infra", "zorgwijk/ops-runbooks", "zorgwijk/crm-backend"]
    scale = 1.0 if u.role in ("engineer", "contractor") else 0.4
    for _ in range(int(r.randint(1, 8) * scale * _span(b) / (4 * H)) + 1):
        g.gh(r, _when(r, b), r.choice(("git.fetch", "git.fetch", "git.clone", "git.push")), u, b.place,
             r.choice(mine))
    if u.role in ("engineer", "contractor"):
        for _ in range(r.randint(0, 2)):
            repo = r.choice(mine)
            n = r.randint(1200, 1900)
            g.gh(r, _when(r, b), "pull_request.create", u, b.place, repo, pull_request_id=n,
                 pull_request_url=f"https://github.com/{repo}/pull/{n}", pull_request_title=r.choice(_PR_TITLES))
        for _ in range(r.randint(0, 2)):
            repo = r.choice(mine)
            n = r.randint(1200, 1900)
            g.gh(r, _when(r, b), r.choice(("pull_request_review.submit", "pull_request.merge")), u, b.place, repo,
                 pull_request_id=n, pull_request_url=f"https://github.com/{repo}/pull/{n}")
    if u.username == "jdevries" and r.random() < 0.15:  # the tech lead tunes branch protection
        g.gh(r, _when(r, b), "protected_branch.update", u, b.place, r.choice(code), name="main",
             required_approving_review_count=r.choice((1, 2)))
    if u.role == "admin" and r.random() < 0.1:
        g.gh(r, _when(r, b), "team.add_member", u, b.place, None, team="zorgwijk/engineering",
             user=r.choice(g.c.by_role("engineer")).github)


_PR_TITLES = ("Fix pagination in customer search", "Bump pydantic to 2.12", "Add audit logging to invoice export",
              "Refactor claims validation", "Terraform: tighten S3 bucket policy", "Retry on Kafka timeouts",
              "Add index on customers.postcode", "Update runbook for failover", "Mask BSN in logs",
              "CI: cache pip downloads")


_K8S_NS = ("payments", "claims", "crm")
_K8S_PODS = {ns: tuple(f"{ns}-api-6f{n}9c7d8b-{s}" for n, s in ((4, "x2kqz"), (7, "m8wtp"))) for ns in _K8S_NS}
_K8S_NODES = ("k8s-node-1", "k8s-node-2", "k8s-node-3")
_KUBECTL = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"


def _k8s_event(r: random.Random, ts: datetime, verb: str, user: dict[str, Any], ip: str, ua: str,
               ref: dict[str, Any] | None, code: int, uri: str, stage: str = "ResponseComplete",
               took: float | None = None) -> dict[str, Any]:
    """An audit.k8s.io/v1 Event at level Metadata; ``ts`` is requestReceivedTimestamp."""
    done = ts + timedelta(seconds=took if took is not None else r.uniform(0.002, 0.06))
    ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                          "auditID": _uuid(r), "stage": stage, "requestURI": uri, "verb": verb, "user": user,
                          "sourceIPs": [ip], "userAgent": ua}
    if ref is not None:
        ev["objectRef"] = {**ref, "apiVersion": ref.get("apiVersion", "v1")}
    ev["responseStatus"] = {"metadata": {}, "code": code}
    ev["requestReceivedTimestamp"] = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ev["stageTimestamp"] = done.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    decision = "allow" if code < 400 else "forbid"
    ev["annotations"] = {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": ""}
    return ev


def _k8s_person(u: DemoUser) -> dict[str, Any]:
    return {"username": u.email, "groups": ["oidc:" + u.role, "system:authenticated"]}


def _k8s_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block) -> None:
    """An engineer looks at the cluster: pods, logs, deployments, configmaps (never secrets or exec)."""
    if r.random() > (0.6 if u.role == "sre" else 0.35):
        return
    who = _k8s_person(u)
    for _ in range(r.randint(2, 9)):
        ts = _trunc(_when(r, b), "us")
        ns = r.choice(_K8S_NS)
        pod = r.choice(_K8S_PODS[ns])
        kind = r.random()
        if kind < 0.35:
            ref, uri = {"resource": "pods", "namespace": ns}, f"/api/v1/namespaces/{ns}/pods?limit=500"
            verb = "list"
        elif kind < 0.6:
            ref = {"resource": "pods", "namespace": ns, "name": pod, "subresource": "log"}
            uri, verb = f"/api/v1/namespaces/{ns}/pods/{pod}/log?container=api&tailLines=200", "get"
        elif kind < 0.8:
            ref = {"resource": "deployments", "namespace": ns, "name": f"{ns}-api", "apiGroup": "apps"}
            uri, verb = f"/apis/apps/v1/namespaces/{ns}/deployments/{ns}-api", "get"
        else:
            ref = {"resource": "configmaps", "namespace": ns, "name": f"{ns}-config"}
            uri, verb = f"/api/v1/namespaces/{ns}/configmaps/{ns}-config", "get"
        g.json(KUBERNETES, SRC_K8S, ts, _k8s_event(r, ts, verb, who, b.place.ip, _KUBECTL, ref, 200, uri), None)
    if u.role == "engineer" and r.random() < 0.05:  # a denied look at a secret: not a read
        ts = _trunc(_when(r, b), "us")
        ref = {"resource": "secrets", "namespace": "payments", "name": "payments-db"}
        g.json(KUBERNETES, SRC_K8S, ts, _k8s_event(r, ts, "get", who, b.place.ip, _KUBECTL, ref, 403,
                                                   "/api/v1/namespaces/payments/secrets/payments-db"), None)


def _benign_kubernetes(g: _Gen) -> None:
    """The cluster's own identities: controllers listing secrets, kubelets fetching the secrets of
    their pods, the CI deployer rolling out images (all system:* or kube-system)."""
    r = g.rng("kubernetes")
    gc = {"username": "system:serviceaccount:kube-system:generic-garbage-collector",
          "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]}
    kcm_ua = "kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/system:serviceaccount:kube-system:"
    t = g.start + timedelta(seconds=r.uniform(0, 600))
    while t < g.end:
        ts = _trunc(t, "us")
        ev = _k8s_event(r, ts, "list", gc, "10.30.0.10", kcm_ua + "generic-garbage-collector",
                        {"resource": "secrets"}, 200, "/api/v1/secrets?limit=500")
        g.json(KUBERNETES, SRC_K8S, ts, ev, None)
        t += timedelta(seconds=r.uniform(540, 660))
    t = g.start + timedelta(seconds=r.uniform(0, 1800))
    while t < g.end:
        ts = _trunc(t, "us")
        node = r.choice(_K8S_NODES)
        ns = r.choice(_K8S_NS)
        kubelet = {"username": f"system:node:{node}", "groups": ["system:nodes", "system:authenticated"]}
        ref = {"resource": "secrets", "namespace": ns, "name": f"{ns}-db"}
        g.json(KUBERNETES, SRC_K8S, ts, _k8s_event(r, ts, "get", kubelet, f"10.30.1.{_K8S_NODES.index(node) + 11}",
                                                   "kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46", ref, 200,
                                                   f"/api/v1/namespaces/{ns}/secrets/{ns}-db"), None)
        t += timedelta(seconds=r.expovariate(1 / 2700))
    for day in g.local_days:
        if day.weekday() >= 5:
            continue
        for _ in range(r.randint(1, 4)):
            ts = _trunc(_at(day, r.uniform(9.5, 17.5) * H), "us")
            ns = r.choice(_K8S_NS)
            ci = {"username": "system:serviceaccount:ci:deployer",
                  "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]}
            ref = {"resource": "deployments", "namespace": ns, "name": f"{ns}-api", "apiGroup": "apps"}
            ev = _k8s_event(r, ts, "patch", ci, "10.30.2.40", "argocd-application-controller/v0.0.0 (linux/amd64) "
                            "kubernetes/$Format", ref, 200, f"/apis/apps/v1/namespaces/{ns}/deployments/{ns}-api")
            g.json(KUBERNETES, SRC_K8S, ts, ev, None)


def _benign_systems(g: _Gen) -> None:
    """Machines: health checks, monitors, cron, backups, CI deploys, internet scanners."""
    r = g.rng("systems")
    # Health checks from the load balancer every 30 s, uptime monitor every 60 s.
    t = g.start + timedelta(seconds=r.uniform(0, 30))
    while t < g.end:
        g.http(t, "10.20.0.5", None, "GET", "/healthz", 200, 15, None, "ELB-HealthChecker/2.0")
        t += timedelta(seconds=30 + r.uniform(-0.2, 0.2))
    t = g.start + timedelta(seconds=r.uniform(0, 60))
    while t < g.end:
        g.http(t, r.choice(("69.162.124.226", "69.162.124.235", "216.144.250.150")), None, "HEAD", "/", 200, 0,
               f"https://{g.c.crm_host}", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)")
        t += timedelta(seconds=60 + r.uniform(-1, 1))
    # Internet background noise: probes on the CRM and port scans on the bastion (no auth attempts).
    scanners = ("167.94.138.44", "162.142.125.199", "198.235.24.130", "205.210.31.52", "71.6.199.23",
                "80.82.77.139", "94.102.61.7", "147.185.132.19")
    probes = ("/.env", "/wp-login.php", "/.git/config", "/admin", "/phpmyadmin/", "/server-status", "/robots.txt",
              "/actuator/health", "/", "/api/v1/users")
    t = g.start
    while t < g.end:
        t += timedelta(seconds=r.expovariate(1 / 1500))
        ip = r.choice(scanners)
        path = r.choice(probes)
        status = 200 if path in ("/robots.txt", "/") else 404
        g.http(t, ip, None, "GET", path, status, 153 if status == 404 else 67, None,
               r.choice(("Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
                         "Expanse, a Palo Alto Networks company, searches across the global IPv4 space multiple times "
                         "per day to identify customers' presences on the Internet.", "curl/8.5.0")))
    t = g.start
    while t < g.end:
        t += timedelta(seconds=r.expovariate(1 / 2400))
        ip = r.choice(scanners)
        pid = g.pid("bastion", r)
        port = r.randint(30000, 65000)
        if r.random() < 0.5:
            g.syslog("bastion", t, f"sshd[{pid}]", f"Connection closed by {ip} port {port} [preauth]")
        else:
            g.syslog("bastion", t, f"sshd[{pid}]", f"Did not receive identification string from {ip} port {port}")
    for day in g.local_days:
        # Cron on every host: root sessions opened by cron itself (a near miss for root-login rules).
        for host in ("bastion", "db-01", "app-01"):
            for hour in range(24):
                ct = _at(day, hour * H + 17 * 60 + r.uniform(0, 0.9))
                pid = g.pid(host, r)
                g.syslog(host, ct, f"CRON[{pid}]",
                         "pam_unix(cron:session): session opened for user root(uid=0) by root(uid=0)")
                g.syslog(host, ct + timedelta(seconds=r.uniform(0.05, 3)), f"CRON[{pid}]",
                         "pam_unix(cron:session): session closed for user root")
        # Nightly database backup to S3 from db-01 (instance role, through the VPC endpoint).
        bt = _at(day, 1.5 * H + r.uniform(0, 60))
        ident = g.assumed("zorgwijk-backup", "i-0c3f9a1e2b4d56789", bt - timedelta(hours=1), mfa=False)
        g.aws_service_assume(r, bt - timedelta(minutes=r.uniform(1, 5)), "zorgwijk-backup", "i-0c3f9a1e2b4d56789")
        for part in range(1, r.randint(40, 64)):
            bt += timedelta(seconds=r.uniform(4, 12))
            g.api(r, bt, ident, g.c.host_ip("db-01"), _BOTO_UA, "s3:PutObject", bucket="zorgwijk-backups",
                  key=f"db-01/{day.isoformat()}/base.tar.gz.part-{part:04d}", size=r.randint(60, 100) * 1_048_576,
                  vpce=True)
        # Nightly CRM export (delta file for finance) from app-01.
        et = _at(day, 2.25 * H + r.uniform(0, 120))
        ident = g.assumed("zorgwijk-crm-export", "i-07b1d2e3f4a5b6c7d", et - timedelta(hours=2), mfa=False)
        g.api(r, et, ident, g.c.host_ip("app-01"), _BOTO_UA, "s3:PutObject", bucket="zorgwijk-customer-exports",
              key=f"exports/{day.isoformat()}/customers-delta.csv.gz", size=r.randint(2_000_000, 3_500_000), vpce=True)
        for hour in range(0, 24, 6):
            for role, inst in (("zorgwijk-backup", "i-0c3f9a1e2b4d56789"),
                               ("zorgwijk-crm-export", "i-07b1d2e3f4a5b6c7d"),
                               ("zorgwijk-app", "i-07b1d2e3f4a5b6c7d")):
                g.aws_service_assume(r, _at(day, hour * H + r.uniform(300, 900)), role, inst)
        # CI deploys over SSH (key, from the runner) on working days.
        if day.weekday() < 5:
            ci = g.c.ci_runner.ip
            for _ in range(r.randint(2, 7)):
                dt = _at(day, r.uniform(9.5, 17.5) * H)
                g.ssh_session(r, "bastion", dt, "deploy", 1010, ci, duration=r.uniform(40, 180))
                g.ssh_session(r, "app-01", dt + timedelta(seconds=r.uniform(2, 5)), "deploy", 1010,
                              g.c.host_ip("bastion"), duration=r.uniform(30, 150))
    # Near misses by admins: a repository made *internal* (not public), MFA enrolled (not removed).
    admin = g.c.user("pjansen")
    t = _at(g.local_days[1], 14.3 * H + r.uniform(0, 1800))
    g.gh(r, t, "repo.access", admin, g.c.office[0], "zorgwijk/design-system", visibility="internal",
         previous_visibility="private")
    newbie = g.c.user("ljacobs")
    t = _at(g.local_days[1], 9.1 * H + r.uniform(0, 900))
    g.okta(t, "user.mfa.factor.activate", newbie, g.c.office[1], r, display="Activate factor or authenticator",
           legacy="core.user.factor.activate", target=[
               {"id": newbie.okta_id, "type": "User", "alternateId": newbie.email, "displayName": newbie.full_name,
                "detailEntry": None}, _factor(newbie)])
    sre = g.c.user("abos")  # a mistyped console password (failures say MFAUsed "No"), then a login with MFA
    t = _at(g.local_days[1], 10 * H + r.uniform(0, 3600))
    g.console_login(r, t, sre.username, g.c.office[3].ip, sre.user_agent, mfa=False, success=False)
    t += timedelta(seconds=r.uniform(10, 40))
    g.console_login(r, t, sre.username, g.c.office[3].ip, sre.user_agent, mfa=True)
    g.api(r, t + timedelta(seconds=r.uniform(5, 30)), g.iam_user(sre.username, console_mfa=True), g.c.office[3].ip,
          _CONSOLE_UA, "ec2:DescribeInstances")
    t = _at(g.local_days[min(2, len(g.local_days) - 1)], 11 * H + r.uniform(0, 3600))
    g.gh(r, t, "repo.create", admin, g.c.office[0], "zorgwijk/dsar-tooling", visibility="private")
    # A support batch (address update campaign): many customers in an hour, in office hours.
    sup = g.c.user("nvermeulen")
    t = _at(g.local_days[min(2, len(g.local_days) - 1)], 10 * H + r.uniform(0, 600))
    for _ in range(r.randint(110, 150)):
        cid = g.customer_id(r)
        g.http(t, g.c.office[2].ip, sup.username, "GET", f"/api/customers/{cid}", 200, r.randint(2100, 4800),
               f"https://{g.c.crm_host}/customers", sup.user_agent)
        t += timedelta(seconds=r.uniform(4, 10))
        g.http(t, g.c.office[2].ip, sup.username, "PUT", f"/api/customers/{cid}", 204, 0,
               f"https://{g.c.crm_host}/customers/{cid}", sup.user_agent)
        t += timedelta(seconds=r.uniform(10, 22))
    _admin_changes(g)
    _edges_of_the_day(g)


def _weekday_on_or_after(g: _Gen, idx: int, weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)) -> date:
    """The first local day with a weekday in ``weekdays`` at or after window day ``idx`` (clamped to
    the window; searched backwards when the window ends first)."""
    days = [(g.start + timedelta(days=i)).astimezone(AMSTERDAM).date() for i in range(g.days)]
    idx = min(max(idx, 0), g.days - 1)
    for d in days[idx:]:
        if d.weekday() in weekdays:
            return d
    for d in reversed(days[:idx]):
        if d.weekday() in weekdays:
            return d
    return days[idx]


def _admin_changes(g: _Gen) -> None:
    """Benign administration that looks like what some rules watch for: joiners and leavers, a trail
    that gets *more* logging, a bucket policy that *denies* plain HTTP, an engineer rotating their
    own access key, a developer group (not an admin group)."""
    r = g.rng("admin-changes")
    c = g.c
    admin, admin2 = c.user("pjansen"), c.user("evanderlinden")
    office = c.office[0]
    # Joiner: the new hire's Okta account (day before), her Support group, her MFA enrolment on day one.
    newbie = next((u for u in c.users if u.hired is not None), None)
    if newbie is not None and newbie.hired is not None:
        t = _at(newbie.hired - timedelta(days=1), 16 * H + r.uniform(0, 1800))
        me = {"id": newbie.okta_id, "type": "User", "alternateId": newbie.email, "displayName": newbie.full_name,
              "detailEntry": None}
        g.okta(t, "user.lifecycle.create", admin, office, r, display="Create Okta user",
               legacy="core.user.config.user_creation.success", target=[me])
        g.okta(t + timedelta(seconds=r.uniform(20, 90)), "group.user_membership.add", admin, office, r,
               display="Add user to group membership", legacy="core.user_group_member.user_add", target=[
                   me, {"id": "00g" + _hid("group", "Support", 17), "type": "UserGroup", "alternateId": "unknown",
                        "displayName": "Support", "detailEntry": None}])
        g.okta(_at(newbie.hired, 10.4 * H + r.uniform(0, 1800)), "user.mfa.factor.activate", newbie, c.office[1], r,
               display="Activate factor or authenticator", legacy="core.user.factor.activate",
               target=[me, _factor(newbie)])
    # Leaver: Okta account deactivated and AWS console password removed on his last day's evening;
    # his GitHub membership and his AWS access key are forgotten (see the leaver_returns scenario).
    leaver = next((u for u in c.users if u.left is not None), None)
    if leaver is not None and leaver.left is not None:
        t = _at(leaver.left - timedelta(days=1), 17.6 * H + r.uniform(0, 1200))
        g.okta(t, "user.lifecycle.deactivate", admin2, office, r, display="Deactivate Okta user",
               legacy="core.user.config.user_deactivated", target=[
                   {"id": leaver.okta_id, "type": "User", "alternateId": leaver.email,
                    "displayName": leaver.full_name, "detailEntry": None}])
        g.ct(r, t + timedelta(minutes=r.uniform(3, 9)), g.iam_user(admin2.username, console_mfa=True), office.ip,
             _CONSOLE_UA, "iam:DeleteLoginProfile", {"userName": leaver.username})
    acct = c.aws_account_id
    trail = f"arn:aws:cloudtrail:{c.aws_region}:{acct}:trail/zorgwijk-org-trail"
    # More logging, not less: S3 data events for the customer exports.
    t = _at(_weekday_on_or_after(g, 3), 14 * H + r.uniform(0, 3600))
    g.ct(r, t, g.iam_user(admin.username, console_mfa=True), office.ip, _CONSOLE_UA, "cloudtrail:PutEventSelectors",
         {"trailName": trail, "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True,
                                                  "excludeManagementEventSources": [], "dataResources": [
                                                      {"type": "AWS::S3::Object",
                                                       "values": ["arn:aws:s3:::zorgwijk-customer-exports/"]}]}]})
    # Hardening a bucket: deny everyone who does not use TLS (Principal "*", but Deny).
    sre = c.user("mdekker")
    t = _at(_weekday_on_or_after(g, 4), 11 * H + r.uniform(0, 3600))
    ident = g.assumed("ZorgwijkOps", sre.username, t - timedelta(minutes=10))
    g.ct(r, t, ident, sre.homes[0].ip, _CLI_UA, "s3:PutBucketPolicy", {
        "bucketName": "zorgwijk-logs", "Host": f"zorgwijk-logs.s3.{c.aws_region}.amazonaws.com", "policy": [""],
        "bucketPolicy": {"Version": "2012-10-17", "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::zorgwijk-logs", "arn:aws:s3:::zorgwijk-logs/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}})
    # An engineer rotates their own access key.
    eng = c.user("jdevries")
    t = _at(_weekday_on_or_after(g, 2), 15 * H + r.uniform(0, 3600))
    me_ident = dict(g.iam_user(eng.username), accessKeyId="AKIA" + _hid("key1", eng.username, 16, _UPPER))
    new_key = "AKIA" + _hid("key2", eng.username, 16, _UPPER)
    g.ct(r, t, me_ident, office.ip, _CLI_UA, "iam:CreateAccessKey", {"userName": eng.username},
         {"accessKey": {"userName": eng.username, "accessKeyId": new_key, "status": "Active",
                        "createDate": _aws_expiry(t)}})
    g.ct(r, t + timedelta(minutes=5), dict(me_ident, accessKeyId=new_key), office.ip, _CLI_UA,
         "iam:UpdateAccessKey",
         {"userName": eng.username, "accessKeyId": me_ident["accessKeyId"], "status": "Inactive"})
    g.ct(r, t + timedelta(minutes=7), dict(me_ident, accessKeyId=new_key), office.ip, _CLI_UA,
         "iam:DeleteAccessKey", {"userName": eng.username, "accessKeyId": me_ident["accessKeyId"]})
    # A contractor joins the developers group (not an admin group).
    t = _at(_weekday_on_or_after(g, 1), 11 * H + r.uniform(0, 3600))
    g.ct(r, t, g.iam_user(admin.username, console_mfa=True), office.ip, _CONSOLE_UA, "iam:AddUserToGroup",
         {"groupName": "Developers", "userName": "jwu"})


def _edges_of_the_day(g: _Gen) -> None:
    """Near misses for the off-hours rule: personal data read just outside the agreed hours, within the
    rule's grace (an early start at 06:40, a last invoice at 19:15)."""
    r = g.rng("edges")
    base = f"https://{g.c.crm_host}"
    for who, idx, hour in (("igraaf", 1, 6.67), ("mkoster", 3, 19.2)):
        u = g.c.user(who)
        day = _weekday_on_or_after(g, idx, tuple(d for d in range(5) if d not in u.days_off))
        t = _at(day, (hour + r.uniform(0, 0.1)) * H)
        place = u.homes[0]
        for _ in range(r.randint(2, 3)):
            path = f"/api/customers/{g.customer_id(r)}" if u.role == "support" else \
                f"/api/invoices/{r.randint(700000, 799999)}"
            g.http(t, place.ip, u.username, "GET", path, 200, r.randint(1400, 4800), f"{base}/customers",
                   u.user_agent)
            t += timedelta(seconds=r.uniform(30, 150))


TRAVELLER = "pvanleeuwen"
_HOTEL = Place("84.88.10.20", "Barcelona", "ES", "Spain", 41.3888, 2.1590, "Telefonica de Espana", 3352,
               "Catalonia", "08001")
_CONFERENCE = Place("62.57.10.20", "Barcelona", "ES", "Spain", 41.4307, 2.2186, "Vodafone Spain", 12430,
                    "Catalonia", "08019")


def _trip_days(start: datetime, days: int) -> list[date]:
    """The traveller's conference trip (three local days, leaving on a weekday, Monday to Wednesday when
    the window allows), or none when the window is too short. It starts on day four or later: the
    traveller's sign-ins need a few days of history before a new country means anything."""
    first = max(4, days // 3)
    starts = [(start + timedelta(days=i)).astimezone(AMSTERDAM).date() for i in range(first, days - 2)]
    best = [d for d in starts if d.weekday() <= 2] or [d for d in starts if d.weekday() <= 4]
    if not best:
        return []
    return [best[0], best[0] + timedelta(days=1), best[0] + timedelta(days=2)]


# --------------------------------------------------------------------------------------------
# Attack scenarios


def _scenario_time(g: _Gen, day_index: int, local_hour: float) -> datetime:
    """First occurrence of a local time of day on or after day ``day_index`` of the window."""
    base = g.start + timedelta(days=min(day_index, g.days - 1))
    d = base.astimezone(AMSTERDAM).date()
    t = _at(d, local_hour * H)
    while t < base:
        d += timedelta(days=1)
        t = _at(d, local_hour * H)
    return t


def _public_window(g: _Gen, r: random.Random) -> tuple[str, datetime, datetime]:
    """When the GitHub scenario's repository is public (the first draws of that scenario's stream)."""
    t = _scenario_time(g, 2, 15.3 + r.uniform(0, 0.3))
    return "zorgwijk/claims-engine", t, t + timedelta(minutes=r.uniform(15, 25))


def _scenarios(g: _Gen, benign: list[DemoRecord]) -> list[Scenario]:
    """The injected attacks (and the labelled business trip), generated after benign traffic: some
    are timed by it (an attacker signs in an hour after the victim did)."""
    out: list[Scenario] = []
    c = g.c

    # 1. SSH brute force from one internet address: root, admin and invalid user names.
    r = g.rng(SSH_BRUTE_FORCE)
    ip = "185.220.101.47"
    t = _scenario_time(g, 0, 3.2 + r.uniform(0, 0.3))
    names = ["root", "root", "admin", "test", "oracle", "ubuntu", "user", "postgres", "git", "ftpuser", "pi",
             "support", "guest", "admin1", "administrator", "jenkins", "ansible", "hadoop", "steam", "minecraft"]
    valid = {"root", "postgres"}
    tried: set[str] = set()
    for _ in range(r.randint(38, 44)):
        name = r.choice(names)
        tried.add(name)
        t = g.ssh_failed(r, "bastion", t, name, ip, valid=name in valid, scenario=SSH_BRUTE_FORCE)
        t += timedelta(seconds=r.uniform(1.5, 6.0))
    out.append(Scenario(SSH_BRUTE_FORCE, f"{ip} tries ~40 passwords on the bastion for root, postgres and invalid "
                        "users (admin, test, oracle...) within a few minutes; every attempt fails.",
                        (SSH_BRUTE_FORCE, "ssh_invalid_user"), t, t, (ip, *sorted(tried))))

    # 2. Brute force on "deploy" (weak password), then success, lateral move, failed sudo.
    r = g.rng(SSH_BRUTE_FORCE_THEN_SUCCESS)
    ip = "45.141.84.126"
    t = _scenario_time(g, 1, 4.6 + r.uniform(0, 0.3))
    for _ in range(r.randint(14, 17)):
        t = g.ssh_failed(r, "bastion", t, "deploy", ip, valid=True, scenario=SSH_BRUTE_FORCE_THEN_SUCCESS)
        t += timedelta(seconds=r.uniform(2, 8))
    end = g.ssh_session(r, "bastion", t, "deploy", 1010, ip, method="password", duration=r.uniform(600, 1100),
                        sudo=(), scenario=SSH_BRUTE_FORCE_THEN_SUCCESS)
    g.syslog("bastion", t + timedelta(seconds=r.uniform(60, 200)), "sudo",
             "  deploy : 3 incorrect password attempts ; TTY=pts/2 ; PWD=/home/deploy ; USER=root ; COMMAND=/bin/bash",
             SSH_BRUTE_FORCE_THEN_SUCCESS)
    g.ssh_session(r, "app-01", t + timedelta(seconds=r.uniform(250, 400)), "deploy", 1010, c.host_ip("bastion"),
                  duration=r.uniform(120, 300), scenario=SSH_BRUTE_FORCE_THEN_SUCCESS)
    out.append(Scenario(SSH_BRUTE_FORCE_THEN_SUCCESS, f"{ip} fails ~15 passwords for 'deploy' on the bastion, then "
                        "'Accepted password for deploy'; it hops to app-01 with the deploy key and fails sudo.",
                        (SSH_BRUTE_FORCE, SSH_BRUTE_FORCE_THEN_SUCCESS), t, end, (ip, "deploy")))

    # 3. Accepted root login on the bastion at night (a forgotten root key).
    r = g.rng(SSH_ROOT_LOGIN)
    ip = "194.26.29.113"
    t = _scenario_time(g, 1, 23.6 + r.uniform(0, 0.2))
    end = g.ssh_session(r, "bastion", t, "root", 0, ip, method="publickey", duration=r.uniform(300, 900),
                        scenario=SSH_ROOT_LOGIN)
    out.append(Scenario(SSH_ROOT_LOGIN, f"'Accepted publickey for root' on the bastion from {ip} at night.",
                        (SSH_ROOT_LOGIN,), t, end, ("root", ip)))

    # 4. AWS console login without MFA from an unusual address (a contractor's stale IAM user).
    r = g.rng(AWS_CONSOLE_LOGIN_WITHOUT_MFA)
    ip = "5.188.62.140"
    who = "akaya"
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    t = _scenario_time(g, 2, 21.2 + r.uniform(0, 0.3))
    t0 = t
    g.console_login(r, t, who, ip, ua, mfa=False, scenario=AWS_CONSOLE_LOGIN_WITHOUT_MFA)
    ident = g.iam_user(who, console_mfa=False)
    day = t.astimezone(AMSTERDAM).date()
    for call, bucket, key in (("s3:ListBuckets", None, None),
                              ("s3:ListObjects", "zorgwijk-customer-exports", "exports/"),
                              ("s3:GetObject", "zorgwijk-customer-exports",
                               f"exports/{day - timedelta(days=1)}/customers-delta.csv.gz"),
                              ("s3:GetObject", "zorgwijk-customer-exports",
                               f"exports/{day - timedelta(days=2)}/customers-delta.csv.gz")):
        t += timedelta(seconds=r.uniform(8, 60))
        g.api(r, t, ident, ip, "[S3Console/0.4, aws-internal/3]", call, AWS_CONSOLE_LOGIN_WITHOUT_MFA,
              bucket=bucket, key=key)
    out.append(Scenario(AWS_CONSOLE_LOGIN_WITHOUT_MFA, f"ConsoleLogin Success with MFAUsed=No for IAM user '{who}' "
                        f"(a contractor who never uses the console) from {ip}, then reads two customer exports "
                        "in the evening.", (AWS_CONSOLE_LOGIN_WITHOUT_MFA, "off_hours_personal_data"),
                        _trunc(t0, "s"), _trunc(t, "s"), (who, ip)))

    # 5. Okta: an admin removes another user's MFA factor; an outside login follows.
    r = g.rng(OKTA_MFA_DEACTIVATED)
    admin, victim = c.user("evanderlinden"), c.user("pvanleeuwen")
    place = admin.homes[0]
    # A residential proxy in the victim's own country: no geo rule is expected to fire.
    evil = Place("77.249.10.20", "Amsterdam", "NL", "Netherlands", 52.3740, 4.8897, "Ziggo B.V.", 33915,
                 "North Holland", "1012")
    t = _scenario_time(g, 1, 19.75 + r.uniform(0, 0.2))
    t0 = t
    g.okta_login(r, t - timedelta(minutes=3), admin, place, (), scenario=OKTA_MFA_DEACTIVATED)
    g.okta(t, "user.mfa.factor.deactivate", admin, place, r, display="Reset factor for user",
           legacy="core.user.factor.deactivate", severity="WARN", reason="User reset OKTA_VERIFY_PUSH factor",
           target=[{"id": victim.okta_id, "type": "User", "alternateId": victim.email,
                    "displayName": victim.full_name, "detailEntry": None}, _factor(victim)],
           scenario=OKTA_MFA_DEACTIVATED)
    t += timedelta(minutes=r.uniform(18, 30))
    g.okta(t, "user.session.start", victim, evil, r, display="User login to Okta", ua=0,
           legacy="core.user_auth.login_success", scenario=OKTA_MFA_DEACTIVATED)
    t += timedelta(seconds=r.uniform(4, 20))
    g.okta(t, "user.mfa.factor.activate", victim, evil, r, display="Activate factor or authenticator", ua=0,
           legacy="core.user.factor.activate", scenario=OKTA_MFA_DEACTIVATED,
           target=[{"id": victim.okta_id, "type": "User", "alternateId": victim.email,
                    "displayName": victim.full_name, "detailEntry": None},
                   {"id": "pfd" + _rid(r, 17), "type": "AuthenticatorEnrollment", "alternateId": "unknown",
                    "displayName": "Google Authenticator", "detailEntry": {"methodTypeUsed": "OTP"}}])
    out.append(Scenario(OKTA_MFA_DEACTIVATED, f"Okta admin '{admin.email}' deactivates the MFA factor of "
                        f"'{victim.email}' (user.mfa.factor.deactivate); ~25 min later that account logs in from "
                        f"{evil.ip} (a residential proxy in {evil.city}) and enrols a new factor.",
                        (OKTA_MFA_DEACTIVATED,),
                        _trunc(t0 - timedelta(minutes=3), "ms"), _trunc(t, "ms"),
                        (admin.email, victim.email, place.ip, evil.ip)))

    # 6. GitHub: a private repository made public; reverted 20 minutes later.
    r = g.rng(GITHUB_REPO_MADE_PUBLIC)
    eng = c.user("tvandijk")
    place = c.office[1]
    repo, t, t2 = _public_window(g, r)
    g.public_from[repo] = (_trunc(t, "ms"), _trunc(t2, "ms"))
    g.gh(r, t, "repo.access", eng, place, repo, scenario=GITHUB_REPO_MADE_PUBLIC, visibility="public",
         previous_visibility="private")
    g.gh(r, t2, "repo.access", c.user("pjansen"), c.office[0], repo, scenario=GITHUB_REPO_MADE_PUBLIC,
         visibility="private", previous_visibility="public")
    out.append(Scenario(GITHUB_REPO_MADE_PUBLIC, f"'{eng.github}' changes {repo} from private to public "
                        f"(repo.access, visibility=public); 'pjansen-zw' makes it private again later.",
                        (GITHUB_REPO_MADE_PUBLIC,), _trunc(t, "ms"), _trunc(t2, "ms"), (eng.github, place.ip, repo)))

    # 6b. Exchange Online: a taken-over mailbox gets an inbox rule forwarding mail outside; the
    # same day a colleague forwards her mailbox to the secretariat (inside: no alert).
    r = g.rng(MAILBOX_FORWARDING_EXTERNAL)
    victim = c.user("pjansen")
    t = _trunc(_scenario_time(g, 3, 22.4 + r.uniform(0, 0.3)), "s")  # CreationTime has whole seconds
    evil_ip = "185.100.87.41"
    g.json(O365, SRC_O365, t, _exchange_cmdlet(r, t, victim.email, "New-InboxRule", evil_ip, [
        ("Mailbox", victim.email), ("Name", "."), ("ForwardTo", "inbox-archive@proton.me"),
        ("MarkAsRead", "True"), ("StopProcessingRules", "True")]), MAILBOX_FORWARDING_EXTERNAL)
    colleague = c.user("tvandijk")
    t_ok = _trunc(_scenario_time(g, 3, 11.2 + r.uniform(0, 0.3)), "s")
    g.json(O365, SRC_O365, t_ok, _exchange_cmdlet(r, t_ok, colleague.email, "Set-Mailbox", colleague.homes[0].ip, [
        ("Identity", colleague.email), ("ForwardingSmtpAddress", "smtp:secretariaat@zorgwijk.nl"),
        ("DeliverToMailboxAndForward", "True")]), None)
    out.append(Scenario(MAILBOX_FORWARDING_EXTERNAL, f"An inbox rule on '{victim.email}' forwards all mail to "
                        "inbox-archive@proton.me (New-InboxRule ForwardTo) from a foreign address at night.",
                        (MAILBOX_FORWARDING_EXTERNAL,), t, t, (victim.email, evil_ip)))

    # 7. Mass export: a support employee scripts the CRM API at night, ~2,000 customers in an hour.
    r = g.rng(MASS_EXPORT)
    sup = c.user("dmulder")
    place = sup.homes[0]
    t = _scenario_time(g, 2, 1.9 + r.uniform(0, 0.1))
    t0 = t
    g.okta_login(r, t, sup, place, ("Zorgwijk CRM",), scenario=MASS_EXPORT)
    t = g.crm_login(r, t + timedelta(seconds=r.uniform(20, 60)), sup, place.ip, scenario=MASS_EXPORT)
    n = r.randint(1950, 2050)
    lo, hi = c.customer_ids
    ids = sorted(r.sample(range(lo, hi + 1), n))
    step = (55 * 60) / n
    for cid in ids:
        t += timedelta(seconds=r.uniform(0.4, 1.6) * step)
        g.http(t, place.ip, sup.username, "GET", f"/api/customers/{cid}", 200, r.randint(2100, 4800), None,
               "python-requests/2.32.3", MASS_EXPORT)
    out.append(Scenario(MASS_EXPORT, f"Support employee '{sup.username}' reads /api/customers/<id> for {n} distinct "
                        f"customers in under an hour at night from home ({place.ip}) with python-requests: a mass "
                        "export of personal data.", ("mass_read_personal_data", "off_hours_personal_data"),
                        _trunc(t0, "ms"), _trunc(t, "s"),
                        (sup.username, place.ip), subject_ids=tuple(str(i) for i in ids)))
    out.extend(_more_scenarios(g, benign))
    out.extend(_cloud_and_database_scenarios(g))
    out.extend(_windows_scenarios(g))
    out.extend(_entra_scenarios(g, benign))
    return out


def _okta_logins(benign: list[DemoRecord], email: str) -> list[datetime]:
    """When a person's Okta sessions started (successfully) in benign traffic."""
    needle = f'"alternateId":"{email}"'.encode()
    out = []
    for rec in benign:
        if rec.log_type == OKTA and b'"user.session.start"' in rec.data and needle in rec.data \
                and b'"result":"SUCCESS"' in rec.data:
            obj = orjson.loads(rec.data)
            if obj["actor"]["alternateId"] == email:
                out.append(rec.timestamp)
    return out


def _unknown(name: str) -> dict[str, Any]:
    """The Okta actor of a sign-in attempt for a user name Okta does not know."""
    return {"id": "unknown", "type": "User", "alternateId": name, "displayName": "unknown", "detailEntry": None}


_PROXIES = (  # (ip, city, country code, country, lat, lon, isp, asn): rotating proxies of a stuffing run
    ("185.100.87.10", "Bucharest", "RO", "Romania", 44.43, 26.10, "Flokinet", 200651),
    ("46.161.10.20", "St Petersburg", "RU", "Russia", 59.89, 30.26, "Petersburg Internet Network", 44050),
    ("188.165.10.20", "Paris", "FR", "France", 48.86, 2.34, "OVH SAS", 16276),
    ("81.2.69.160", "London", "GB", "United Kingdom", 51.53, -0.23, "Andrews & Arnold", 20712),
    ("89.160.20.112", "Stockholm", "SE", "Sweden", 59.33, 18.05, "Bredband2", 29518),
    ("177.10.10.20", "Campo Bom", "BR", "Brazil", -29.67, -51.05, "Claro", 28573),
    ("200.10.10.20", "Santiago", "CL", "Chile", -33.45, -70.67, "Entel", 27651),
    ("41.10.10.20", "Germiston", "ZA", "South Africa", -26.22, 28.18, "Vodacom", 29975),
    ("125.20.10.20", "New Delhi", "IN", "India", 28.60, 77.20, "Bharti Airtel", 9498),
    ("36.10.10.20", "Tokyo", "JP", "Japan", 35.69, 139.75, "KDDI", 2516),
    ("58.10.10.20", "Jomtien Beach", "TH", "Thailand", 12.88, 100.89, "True Internet", 7470),
    ("27.10.10.20", "Chongqing", "CN", "China", 29.56, 106.55, "China Telecom", 4134),
    ("31.13.10.20", "Katrineholm", "SE", "Sweden", 59.00, 16.20, "Telia", 3301),
    ("92.38.10.20", "Volgodonsk", "RU", "Russia", 47.84, 42.29, "Rostelecom", 12389),
    ("103.21.10.20", "Mong Kok", "HK", "Hong Kong", 22.32, 114.17, "HKBN", 9269),
    ("24.48.10.20", "Montreal", "CA", "Canada", 45.61, -73.58, "Videotron", 5769),
    ("73.10.10.20", "Hillsborough", "US", "United States", 40.50, -74.69, "Comcast", 7922),
    ("87.10.10.20", "Anzio", "IT", "Italy", 41.45, 12.62, "Telecom Italia", 3269),
    ("217.10.10.20", "Neu-Ulm", "DE", "Germany", 48.40, 10.02, "Vodafone GmbH", 3209),
    ("101.160.10.20", "Melbourne", "AU", "Australia", -37.81, 144.95, "Telstra", 1221),
)


def _proxy(i: int) -> Place:
    ip, city, cc, country, lat, lon, isp, asn = _PROXIES[i % len(_PROXIES)]
    return Place(ip, city, cc, country, lat, lon, isp, asn)


def _more_scenarios(g: _Gen, benign: list[DemoRecord]) -> list[Scenario]:
    out: list[Scenario] = []
    c = g.c

    def span(sid: str) -> tuple[datetime, datetime]:
        mine = [rec.timestamp for rec in g.out if rec.scenario == sid]
        return (min(mine), max(mine)) if mine else (g.start, g.start)

    def day_at(frac: float, min_day: int, weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)) -> date:
        return _weekday_on_or_after(g, max(min_day, int(g.days * frac)), weekdays)

    def failed_okta(t: datetime, actor: DemoUser | dict[str, Any], place: Place, r: random.Random, sid: str,
                    ua: int = 2) -> None:
        g.okta(t, "user.session.start", actor, place, r, outcome="FAILURE", reason="INVALID_CREDENTIALS",
               display="User login to Okta", legacy="core.user_auth.login_failed", ua=ua, scenario=sid)

    # 8. Password guessing against one Okta account at night, from one address.
    sid = OKTA_BRUTE_FORCE
    r = g.rng(sid)
    victim = c.user("gprins")
    evil = _proxy(13)
    t = _at(day_at(0.15, 1), (3.1 + r.uniform(0, 0.3)) * H)
    n = r.randint(22, 28)
    for _ in range(n):
        failed_okta(t, victim, evil, r, sid)
        t += timedelta(seconds=r.uniform(6, 15))
    out.append(Scenario(sid, f"{evil.ip} ({evil.city}) tries {n} passwords for {victim.email} at Okta within a few "
                        "minutes at night; every attempt fails.", ("login_brute_force",), *span(sid),
                        (victim.email, evil.ip)))

    # 9. Password spraying: one address, one password, many accounts (some do not exist), slowly.
    sid = PASSWORD_SPRAYING
    r = g.rng(sid)
    evil = _proxy(0)
    staff = [u.email for u in r.sample([u for u in c.users if u.works_on(day_at(0.45, 2))], 14)]
    targets = staff + [f"{n}@{c.domain}" for n in ("info", "admin", "hr", "finance", "sales", "it")]
    r.shuffle(targets)
    t = _at(day_at(0.45, 2), (2.2 + r.uniform(0, 0.5)) * H)
    by_email = {u.email: u for u in c.users}
    for email in targets:
        failed_okta(t, by_email.get(email) or _unknown(email), evil, r, sid, ua=0)
        t += timedelta(seconds=r.uniform(60, 100))
    out.append(Scenario(sid, f"{evil.ip} ({evil.city}) tries one password against {len(targets)} Okta accounts "
                        "(14 real, 6 guessed like info@ and admin@), one attempt each, over half an hour.",
                        ("password_spraying",), *span(sid), (evil.ip, *targets)))

    # 10. Credential stuffing: leaked pairs through rotating proxies, one or two accounts per address.
    sid = CREDENTIAL_STUFFING
    r = g.rng(sid)
    leaked = [u.email for u in c.users] + [f"{u.full_name.split()[0].lower()}.{u.username[1:]}@{c.domain}"
                                           for u in c.users[:8]]
    t = _at(day_at(0.6, 3), (4.1 + r.uniform(0, 0.5)) * H)
    tried: list[str] = []
    ips = []
    for i in range(len(_PROXIES)):
        place = _proxy(i)
        ips.append(place.ip)
        for email in r.sample(leaked, r.choice((1, 1, 2))):
            failed_okta(t, by_email.get(email) or _unknown(email), place, r, sid, ua=r.randint(0, 4))
            tried.append(email)
            t += timedelta(seconds=r.uniform(8, 20))
    out.append(Scenario(sid, f"Credential stuffing at Okta: {len(ips)} addresses in {len({p[2] for p in _PROXIES})} "
                        f"countries replay {len(tried)} leaked e-mail/password pairs, one or two per address, within "
                        "minutes; all fail.", ("credential_stuffing",), *span(sid), tuple(ips)))

    # 11. A session used from abroad an hour after its owner signed in at the office.
    sid = SESSION_HIJACK_ABROAD
    r = g.rng(sid)
    victim = c.user("mkoster")
    evil = Place("45.33.10.20", "Dallas", "US", "United States", 32.7787, -96.8217, "Linode, LLC", 63949, "Texas",
                 "75201")
    earliest = _at(day_at(0.5, 4), 0)
    own = [ts for ts in _okta_logins(benign, victim.email) if ts >= earliest] or \
        [ts for ts in _okta_logins(benign, victim.email) if ts >= g.start + timedelta(days=3.5)]
    if own:
        t = own[0] + timedelta(minutes=r.uniform(50, 90))
        g.okta_login(r, t, victim, evil, ("Google Workspace", "Exact Online"), scenario=sid)
        out.append(Scenario(sid, f"{victim.email} signs in at Okta from the Netherlands; about an hour later her "
                            f"account signs in from {evil.ip} ({evil.city}, US), MFA push accepted, and opens Google "
                            "Workspace and Exact Online: impossible travel, and a country new for the account.",
                            ("impossible_travel", "login_from_new_country"), *span(sid), (victim.email, evil.ip)))

    # 12. Business travel (labelled, not an attack): a conference in Barcelona.
    sid = BUSINESS_TRIP
    r = g.rng(sid)
    if g.trip:
        u = c.user(TRAVELLER)
        d0, d1, d2 = g.trip
        office = c.office[2]
        t, _ = g.okta_login(r, _at(d0, (8.3 + r.uniform(0, 0.4)) * H), u, office, ("Slack", "Zorgwijk CRM"),
                            scenario=sid)
        t = g.crm_login(r, t + timedelta(seconds=r.uniform(20, 60)), u, office.ip, scenario=sid)
        for _ in range(r.randint(3, 6)):
            t += timedelta(seconds=r.uniform(200, 900))
            _scenario_case(g, r, t, u, office.ip, sid)
        g.okta_login(r, _at(d0, (19.4 + r.uniform(0, 0.8)) * H), u, _HOTEL, ("Slack", "Google Workspace"),
                     scenario=sid)
        g.okta_login(r, _at(d1, (8.4 + r.uniform(0, 0.3)) * H), u, _CONFERENCE, ("Slack", "Google Workspace"),
                     scenario=sid)
        g.okta_login(r, _at(d1, (17.5 + r.uniform(0, 0.5)) * H), u, _HOTEL, ("Slack",), scenario=sid)
        g.okta_login(r, _at(d2, (7.6 + r.uniform(0, 0.4)) * H), u, _HOTEL, ("Slack", "Google Workspace"),
                     scenario=sid)
        g.okta_login(r, _at(d2, (20.3 + r.uniform(0, 0.5)) * H), u, u.homes[0], ("Slack",), scenario=sid)
        out.append(Scenario(sid, f"{u.email} travels to a conference in Barcelona ({d0} to {d2}): office sign-in in "
                            "the morning, hotel in the evening, conference Wi-Fi the next day, home two days later. "
                            "Airliner speed is not impossible travel; the first sign-in from Spain is a sign-in from "
                            "a new country (a true positive that triage closes as travel).",
                            ("login_from_new_country",), *span(sid), (u.email, _HOTEL.ip, _CONFERENCE.ip)))

    # 13. Snooping at night: a claims handler looks up a few customers' records on a Saturday night.
    sid = NIGHT_SNOOPING
    r = g.rng(sid)
    u = c.user("fjanssen")
    place = u.homes[0]
    t, _ = g.okta_login(r, _at(day_at(0.35, 1, (5,)), (23.2 + r.uniform(0, 0.3)) * H), u, place, ("Zorgwijk CRM",),
                        scenario=sid)
    t = g.crm_login(r, t + timedelta(seconds=r.uniform(20, 60)), u, place.ip, scenario=sid)
    ids = [g.customer_id(r) for _ in range(r.randint(5, 8))]
    base = f"https://{c.crm_host}"
    for cid in ids:
        t += timedelta(seconds=r.uniform(40, 150))
        g.http(t, place.ip, u.username, "GET", f"/api/customers/search?q={r.choice(_SEARCHES)}", 200,
               r.randint(900, 7800), f"{base}/customers", u.user_agent, sid)
        t += timedelta(seconds=r.uniform(5, 20))
        g.http(t, place.ip, u.username, "GET", f"/api/customers/{cid}", 200, r.randint(2100, 4800),
               f"{base}/customers", u.user_agent, sid)
        if r.random() < 0.6:
            t += timedelta(seconds=r.uniform(10, 60))
            g.http(t, place.ip, u.username, "GET", f"/api/customers/{cid}/medical", 200, r.randint(1800, 9500),
                   f"{base}/customers/{cid}", u.user_agent, sid)
    out.append(Scenario(sid, f"'{u.username}' (claims team, office hours only) opens the records and medical files "
                        f"of {len(ids)} customers from home late on a Saturday night: curiosity, not work.",
                        ("off_hours_personal_data",), *span(sid), (u.username, place.ip),
                        subject_ids=tuple(str(i) for i in ids)))

    # 14. Medical records opened without a need to know (the CRM's role check is broken for a while).
    sid = MEDICAL_WITHOUT_NEED
    r = g.rng(sid)
    u = c.user("yvandenberg")
    place = c.office[3]
    t = _at(day_at(0.25, 1, (1, 2, 3, 4)), (11 + r.uniform(0, 0.5)) * H)
    ids = [g.customer_id(r) for _ in range(r.randint(3, 5))]
    for cid in ids:
        g.http(t, place.ip, u.username, "GET", f"/api/customers/{cid}", 200, r.randint(2100, 4800),
               f"{base}/customers", u.user_agent, sid)
        t += timedelta(seconds=r.uniform(20, 90))
        g.http(t, place.ip, u.username, "GET", f"/api/customers/{cid}/medical", 200, r.randint(1800, 9500),
               f"{base}/customers/{cid}", u.user_agent, sid)
        t += timedelta(seconds=r.uniform(60, 300))
    out.append(Scenario(sid, f"'{u.username}' (support, not on the claims team) opens the medical records of "
                        f"{len(ids)} customers and the CRM answers 200: its role check is broken after a release.",
                        ("special_category_need_to_know",), *span(sid), (u.username,),
                        subject_ids=tuple(str(i) for i in ids)))

    # 15. An admin who opens a few records an hour pulls some 300 in three quarters of an hour.
    sid = ADMIN_BULK_READ
    r = g.rng(sid)
    u = c.user("pjansen")
    place = c.office[0]
    t = _at(day_at(0.65, 4, (0, 1, 2, 3, 4)), (14 + r.uniform(0, 0.5)) * H)
    ids = r.sample(range(c.customer_ids[0], c.customer_ids[1] + 1), r.randint(280, 320))
    for cid in ids:
        g.http(t, place.ip, u.username, "GET", f"/api/customers/{cid}", 200, r.randint(2100, 4800),
               f"{base}/customers", u.user_agent, sid)
        t += timedelta(seconds=r.uniform(5, 12))
    out.append(Scenario(sid, f"IT admin '{u.username}' reads {len(ids)} customer records in the CRM within the hour, "
                        "in office hours: far below a mass export, fifty times and more his usual hourly reads.",
                        ("personal_data_read_anomaly",), *span(sid), (u.username, place.ip),
                        subject_ids=tuple(str(i) for i in ids)))

    # 16. A dormant account (long leave) signs in again, at night, from an unfamiliar Dutch address.
    sid = DORMANT_ACCOUNT
    r = g.rng(sid)
    u = next(x for x in c.users if x.on_leave)
    last = _at((g.start - timedelta(days=47)).astimezone(AMSTERDAM).date(), 9.2 * H)
    g.okta_login(r, last, u, u.homes[0], ("Slack", "Exact Online"), scenario=sid)
    evil = Place("213.10.10.20", "Krommenie", "NL", "Netherlands", 52.5055, 4.7587, "KPN B.V.", 1136,
                 "North Holland", "1561")
    t = _at(day_at(0.4, 1), (22.5 + r.uniform(0, 0.4)) * H)
    g.okta_login(r, t, u, evil, ("Slack", "Google Workspace"), scenario=sid)
    out.append(Scenario(sid, f"{u.email} is on long leave; the account last signed in 47 days before the window "
                        f"(that record is part of the scenario: the history the rule needs) and signs in again at "
                        f"night from {evil.ip}.", ("dormant_account_reused",), *span(sid), (u.email, evil.ip)))

    # 17. A leaver comes back: Okta refuses him, but his GitHub membership and AWS access key still work.
    sid = LEAVER_RETURNS
    r = g.rng(sid)
    u = next(x for x in c.users if x.left is not None)
    assert u.left is not None
    when = max(_at(u.left + timedelta(days=2), 21.4 * H), _at(day_at(0.55, 0), 21.4 * H))
    if when >= g.end:
        when = _at(day_at(1.0, 0), 21.4 * H)
    t = when + timedelta(seconds=r.uniform(0, 900))
    place = u.homes[0]
    g.okta(t, "user.session.start", u, place, r, outcome="FAILURE", reason="VERIFICATION_ERROR",
           display="User login to Okta", legacy="core.user_auth.login_failed", scenario=sid)
    for repo in r.sample([x for x, _ in c.repos], 4):
        t += timedelta(seconds=r.uniform(30, 240))
        g.gh(r, t, "git.clone", u, place, repo, scenario=sid)
    ident = dict(g.iam_user(u.username), accessKeyId="AKIA" + _hid("key1", u.username, 16, _UPPER))
    for call, bucket, key in (("sts:GetCallerIdentity", None, None), ("s3:ListBuckets", None, None),
                              ("s3:ListObjects", "zorgwijk-artifacts", "releases/"),
                              ("s3:GetObject", "zorgwijk-artifacts", "releases/crm-api-2026.11.1.tar.gz")):
        t += timedelta(seconds=r.uniform(20, 90))
        g.api(r, t, ident, place.ip, _CLI_UA, call, sid, bucket=bucket, key=key)
    out.append(Scenario(sid, f"'{u.username}' left on {u.left} (directory: terminated). Okta refuses him, but "
                        "offboarding forgot GitHub and his AWS access key: he clones four repositories and downloads "
                        "a release from S3.", ("account_status_violation",), *span(sid),
                        (u.username, u.github, place.ip)))

    # 18. A leaked admin access key: a second key for a service user, admin rights for it, then used.
    sid = AWS_KEY_BACKDOOR
    r = g.rng(sid)
    admin = c.user("evanderlinden")
    evil_ip = "46.161.10.20"
    key_ident = dict(g.iam_user(admin.username), accessKeyId="AKIA" + _hid("key1", admin.username, 16, _UPPER))
    t = _at(day_at(0.3, 2), (2.6 + r.uniform(0, 0.3)) * H)
    ua = "Boto3/1.35.54 md/Botocore#1.35.54 ua/2.0 os/linux#6.8.0 lang/python#3.12.3 Botocore/1.35.54"
    g.api(r, t, key_ident, evil_ip, ua, "sts:GetCallerIdentity", sid)
    t += timedelta(seconds=r.uniform(5, 30))
    g.api(r, t, key_ident, evil_ip, ua, "iam:ListUsers", sid)
    svc = "svc-reporting"
    t += timedelta(seconds=r.uniform(20, 90))
    g.ct(r, t, key_ident, evil_ip, ua, "iam:ListAttachedUserPolicies", {"userName": svc}, read_only=True,
         scenario=sid)
    new_key = "AKIA" + _hid("backdoor", svc, 16, _UPPER)
    t += timedelta(seconds=r.uniform(20, 90))
    g.ct(r, t, key_ident, evil_ip, ua, "iam:CreateAccessKey", {"userName": svc},
         {"accessKey": {"userName": svc, "accessKeyId": new_key, "status": "Active", "createDate": _aws_expiry(t)}},
         scenario=sid)
    t += timedelta(seconds=r.uniform(20, 60))
    g.ct(r, t, key_ident, evil_ip, ua, "iam:AttachUserPolicy",
         {"userName": svc, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, scenario=sid)
    svc_ident = {"type": "IAMUser", "principalId": "AIDA" + _hid("aida", svc, 17, _UPPER),
                 "arn": f"arn:aws:iam::{c.aws_account_id}:user/{svc}", "accountId": c.aws_account_id,
                 "userName": svc, "accessKeyId": new_key}
    t += timedelta(minutes=r.uniform(6, 12))
    for call, bucket, key in (("sts:GetCallerIdentity", None, None), ("s3:ListBuckets", None, None),
                              ("s3:ListObjects", "zorgwijk-customer-exports", "exports/"),
                              ("s3:GetObject", "zorgwijk-customer-exports", "exports/customers-full.csv.gz")):
        t += timedelta(seconds=r.uniform(10, 60))
        g.api(r, t, svc_ident, evil_ip, ua, call, sid, bucket=bucket, key=key)
    out.append(Scenario(sid, f"{admin.username}'s long-lived access key (leaked) is used from {evil_ip} at night: it "
                        f"creates an access key for the service user '{svc}', attaches AdministratorAccess to it, "
                        "and the new key reads the customer exports minutes later.",
                        ("aws_access_key_for_other_user", "privilege_granted_then_used"), *span(sid),
                        (admin.username, svc, evil_ip)))

    # 19. Blinding the defenders: a stolen SRE session stops CloudTrail, deletes logs, removes an admin's MFA.
    sid = AWS_DEFENSE_EVASION
    r = g.rng(sid)
    sre = c.user("abos")
    t = _at(day_at(0.7, 3), (3.0 + r.uniform(0, 0.3)) * H)
    ident = g.assumed("ZorgwijkOps", sre.username, t - timedelta(minutes=40))
    trail = f"arn:aws:cloudtrail:{c.aws_region}:{c.aws_account_id}:trail/zorgwijk-org-trail"
    steps: list[tuple[str, Any, bool]] = [
        ("cloudtrail:DescribeTrails", {"includeShadowTrails": True}, True),
        ("cloudtrail:StopLogging", {"name": trail}, False),
        ("ec2:DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-0a7c3e91d2b4f5608", "tag": 1}}},
         False),
        ("logs:DeleteLogGroup", {"logGroupName": "/aws/vpc/flow-logs"}, False),
        ("iam:DeactivateMFADevice", {"userName": "pjansen",
                                     "serialNumber": f"arn:aws:iam::{c.aws_account_id}:mfa/pjansen-yubikey"}, False),
        ("iam:DeleteVirtualMFADevice", {"serialNumber": f"arn:aws:iam::{c.aws_account_id}:mfa/pjansen-yubikey"},
         False),
    ]
    for call, req, ro in steps:
        t += timedelta(seconds=r.uniform(15, 70))
        g.ct(r, t, ident, evil_ip, _CLI_UA, call, req, read_only=ro, scenario=sid)
    out.append(Scenario(sid, f"A stolen session of SRE '{sre.username}' (ZorgwijkOps) from {evil_ip} at night stops "
                        "CloudTrail, deletes the VPC flow logs and their log group, and removes the MFA device of "
                        "admin 'pjansen'.", ("cloudtrail_logging_disabled", "mfa_disabled"), *span(sid),
                        (sre.username, evil_ip)))

    # 20. An engineer opens the customer-exports bucket to the internet to share a file; reverted later.
    sid = S3_BUCKET_EXPOSED
    r = g.rng(sid)
    eng, sre2 = c.user("tvandijk"), c.user("mdekker")
    t = _at(day_at(0.8, 4, (0, 1, 2, 3, 4)), (15.1 + r.uniform(0, 0.5)) * H)
    bucket = "zorgwijk-customer-exports"
    host = {"Host": f"{bucket}.s3.{c.aws_region}.amazonaws.com"}
    ident = g.assumed("ZorgwijkEngineer", eng.username, t - timedelta(minutes=20))
    g.ct(r, t, ident, c.office[1].ip, _CLI_UA, "s3:DeleteBucketPublicAccessBlock",
         {"bucketName": bucket, "publicAccessBlock": "", **host}, scenario=sid)
    t += timedelta(seconds=r.uniform(30, 120))
    g.ct(r, t, ident, c.office[1].ip, _CLI_UA, "s3:PutBucketPolicy", {
        "bucketName": bucket, "policy": [""], **host, "bucketPolicy": {"Version": "2012-10-17", "Statement": [{
            "Sid": "ShareWithAuditor", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/share/*"}]}}, scenario=sid)
    t += timedelta(minutes=r.uniform(30, 45))
    ident2 = g.assumed("ZorgwijkOps", sre2.username, t - timedelta(minutes=5))
    g.ct(r, t, ident2, c.office[0].ip, _CLI_UA, "s3:PutBucketPublicAccessBlock", {
        "bucketName": bucket, **host, "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}},
        scenario=sid)
    g.ct(r, t + timedelta(seconds=r.uniform(10, 40)), ident2, c.office[0].ip, _CLI_UA, "s3:DeleteBucketPolicy",
         {"bucketName": bucket, **host}, scenario=sid)
    out.append(Scenario(sid, f"'{eng.username}' deletes the public access block of {bucket} and adds a policy "
                        "allowing everyone to read share/*, to send an auditor a file; SRE 'mdekker' reverts it "
                        "within the hour.", ("storage_made_public",), *span(sid), (eng.username, bucket)))

    # 21. GitHub: a stolen owner token makes a contractor's account owner and drops the 2FA requirement.
    sid = GITHUB_OWNER_ESCALATION
    r = g.rng(sid)
    owner, contractor = c.user("pjansen"), c.user("jwu")
    evil = _proxy(1)
    t = _at(day_at(0.75, 3), (22.1 + r.uniform(0, 0.4)) * H)
    g.gh(r, t, "org.update_member", owner, evil, None, scenario=sid, user=contractor.github,
         user_id=10_000_000 + contractor.uid * 7919, permission="admin", old_permission="read")
    t += timedelta(seconds=r.uniform(30, 120))
    g.gh(r, t, "org.disable_two_factor_requirement", owner, evil, None, scenario=sid)
    for repo, _ in c.repos:
        t += timedelta(seconds=r.uniform(20, 90))
        g.gh(r, t, "git.clone", contractor, evil, repo, scenario=sid)
    out.append(Scenario(sid, f"'{owner.github}'s personal access token, stolen, is used from {evil.ip}: it makes "
                        f"'{contractor.github}' an organisation owner and disables the 2FA requirement; that account "
                        "then clones every repository.", ("privilege_granted_then_used", "mfa_disabled"),
                        *span(sid), (owner.github, contractor.github, evil.ip)))

    # 22. Okta: an admin grants a contractor super-admin; he signs in and creates an API token.
    sid = OKTA_ADMIN_GRANT
    r = g.rng(sid)
    admin, contractor = c.user("evanderlinden"), c.user("akaya")
    t = _at(day_at(0.85, 5), (19.4 + r.uniform(0, 0.3)) * H)
    g.okta(t, "user.account.privilege.grant", admin, admin.homes[0], r, display="Grant user privilege",
           legacy="core.user.admin_privilege.granted", debug={"privilegeGranted": "Super administrator"},
           target=[{"id": contractor.okta_id, "type": "User", "alternateId": contractor.email,
                    "displayName": contractor.full_name, "detailEntry": None}], scenario=sid)
    t, _ = g.okta_login(r, t + timedelta(minutes=r.uniform(5, 12)), contractor, contractor.homes[0], (),
                        scenario=sid)
    g.okta(t + timedelta(seconds=r.uniform(30, 120)), "system.api_token.create", contractor, contractor.homes[0], r,
           display="Create API token", legacy="api.token.create", scenario=sid,
           target=[{"id": "00T" + _rid(r, 17), "type": "Token", "alternateId": "unknown",
                    "displayName": "sync-script", "detailEntry": None}])
    out.append(Scenario(sid, f"{admin.email} grants {contractor.email} Okta Super administrator in the evening; "
                        "minutes later he signs in and creates an API token.", ("privilege_granted_then_used",),
                        *span(sid), (admin.email, contractor.email)))

    # Kubernetes: an engineer's kubeconfig (its OIDC refresh token), stolen, is used at night from
    # abroad: the secrets of the payments namespace are listed and one read, kube-system is refused,
    # then a shell is opened in a payments pod (kubectl exec over WebSockets: verb get).
    sid = K8S_STOLEN_KUBECONFIG
    r = g.rng(sid)
    eng = c.user("sbakker")
    who = _k8s_person(eng)
    evil_ip = "45.141.215.19"
    t = _trunc(_scenario_time(g, 1, 23.6 + r.uniform(0, 0.2)), "us")
    k8s_steps = [("list", {"resource": "secrets", "namespace": "payments"}, 200, "/api/v1/namespaces/payments/secrets"),
             ("list", {"resource": "secrets", "namespace": "kube-system"}, 403,
              "/api/v1/namespaces/kube-system/secrets"),
             ("get", {"resource": "secrets", "namespace": "payments", "name": "payments-db"}, 200,
              "/api/v1/namespaces/payments/secrets/payments-db")]
    for verb, ref, code, uri in k8s_steps:
        g.json(KUBERNETES, SRC_K8S, t, _k8s_event(r, t, verb, who, evil_ip, _KUBECTL, ref, code, uri), sid)
        t = _trunc(t + timedelta(seconds=r.uniform(4, 40)), "us")
    pod = _K8S_PODS["payments"][0]
    ref = {"resource": "pods", "namespace": "payments", "name": pod, "subresource": "exec"}
    uri = (f"/api/v1/namespaces/payments/pods/{pod}/exec?command=%2Fbin%2Fsh&container=api&stdin=true&stdout=true"
           "&tty=true")
    started = _k8s_event(r, t, "get", who, evil_ip, _KUBECTL, ref, 101, uri, stage="ResponseStarted", took=0.03)
    g.json(KUBERNETES, SRC_K8S, t, started, sid)
    done = {**started, "stage": "ResponseComplete",
            "stageTimestamp": (t + timedelta(seconds=r.uniform(180, 420))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    g.json(KUBERNETES, SRC_K8S, t, done, sid)
    out.append(Scenario(sid, f"{eng.email}'s stolen kubeconfig is used from {evil_ip} at night: the payments "
                        "secrets are listed and payments-db read, kube-system refuses, then a shell is opened in a "
                        "payments pod.", ("k8s_secret_read_by_non_system", "k8s_pod_exec"), *span(sid),
                        (eng.email, evil_ip)))
    return out


def _scenario_case(g: _Gen, r: random.Random, t: datetime, u: DemoUser, ip: str, sid: str) -> None:
    """A finance lookup (an invoice, then the customer) as part of a scenario."""
    base = f"https://{g.c.crm_host}"
    g.http(t, ip, u.username, "GET", f"/api/invoices/{r.randint(700000, 799999)}", 200, r.randint(1400, 3100),
           f"{base}/customers", u.user_agent, sid)
    t += timedelta(seconds=r.uniform(10, 60))
    g.http(t, ip, u.username, "GET", f"/api/customers/{g.customer_id(r)}", 200, r.randint(2100, 4800),
           f"{base}/customers", u.user_agent, sid)


# --------------------------------------------------------------------------------------------
# Public API


# --------------------------------------------------------------------------------------------
# The CRM database (pgAudit) and the instance-role scenario

_DB_TABLES = ("public.customers", "public.policies", "public.claims", "public.invoices", "public.products",
              "public.tariffs")
_REPORTS = ("SELECT count(*) FROM public.policies WHERE start_date >= date_trunc('month', now())",
            "SELECT product_id, count(*) FROM public.policies GROUP BY product_id",
            "SELECT * FROM public.invoices WHERE status = 'overdue' ORDER BY due_date",
            "SELECT id, name, city FROM public.customers WHERE id = {cid}",
            "SELECT * FROM public.claims WHERE customer_id = {cid}",
            "SELECT * FROM public.tariffs WHERE valid_to IS NULL")


def _benign_database(g: _Gen) -> None:
    """Office-hours report queries by finance and the DPO, the nightly pg_dump as ``backup`` (one
    COPY per table, personal ones included: far below the bulk-read rule's hundred), and the admins'
    role changes under their own names (not as postgres): near misses of the database rules."""
    r = g.rng("database")
    people = [u for u in g.c.users if u.role in ("finance", "dpo")]
    for i in range(g.days):
        day = (g.start + timedelta(days=i)).astimezone(AMSTERDAM).date()
        for u in people:
            if not u.works_on(day) or day.weekday() >= 5 or r.random() < 0.4:
                continue
            for _ in range(r.randint(1, 3)):
                t = _at(day, r.uniform(9, 17) * H)
                reads = [r.choice(_REPORTS).format(cid=g.customer_id(r)) for _ in range(r.randint(2, 12))]
                g.pg_session(r, t, u.username, reads, gap=(20, 240))
        reads = [f"COPY {t} (id, data) TO stdout;" for t in _DB_TABLES]
        g.pg_session(r, _at(day, 1.25 * H + r.uniform(0, 300)), "backup", reads, gap=(1, 6))
        if day.weekday() == 1:
            admin = r.choice(("pjansen", "evanderlinden"))
            t = _at(day, r.uniform(10, 16) * H)
            pid = r.randint(20_000, 4_000_000)
            g.pg(t, pid, admin, "crm", f"LOG:  connection authorized: user={admin} database=crm application_name=psql")
            g.pg(t + timedelta(seconds=r.uniform(5, 40)), pid, admin, "crm",
                 "LOG:  AUDIT: SESSION,1,1,ROLE,ALTER ROLE,,,ALTER ROLE report_reader VALID UNTIL 'infinity',"
                 "<not logged>")


AITM_VICTIM = "kbrouwer"
#: an adversary-in-the-middle phishing proxy (Evilginx-style) on a VPS
_AITM_PROXY = Place("162.243.10.20", "New York", "US", "United States", 40.7308, -73.9975, "DigitalOcean, LLC",
                    14061, "New York", "10003")
_ATTACKER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _entra_signins(benign: list[DemoRecord], upn: str) -> list[datetime]:
    """When a person signed in successfully at Entra ID in benign traffic."""
    needle = f'"userPrincipalName":"{upn}"'.encode()
    return [rec.timestamp for rec in benign if rec.log_type == ENTRA and needle in rec.data
            and b'"resultType":"0"' in rec.data]


def _entra_scenarios(g: _Gen, benign: list[DemoRecord]) -> list[Scenario]:
    """AiTM phishing at Entra ID: the proxy's sign-in an hour after the victim's own, an ocean away.

    Impossible travel needs no history, so the scenario is in every window. A country new for the
    account is only news after the rule's learning period (three days from the account's first
    sign-in): the scenario is placed after it when the window allows (a week or more) and then
    expects that rule too; in a shorter window it is placed inside it and expects impossible travel
    alone. The expectation follows from where the scenario landed, not from the window's length.
    """
    sid = ENTRA_AITM_PHISHING
    r = g.rng(sid)
    u = g.c.user(AITM_VICTIM)
    own = [ts for ts in _entra_signins(benign, u.email) if ts < g.end - timedelta(hours=2)]
    learned_from = own[0] + timedelta(days=3.2) if own else g.end  # conservative: Okta may be minutes earlier
    # After her last sign-in of a day (the one after lunch), so that her next one, the next morning, is
    # slow enough to have travelled back: one alert for the incident, not a second one for the return.
    signins = sorted(own + _okta_logins(benign, u.email))
    last = [ts for ts in own if not any(x > ts and x.astimezone(AMSTERDAM).date() == ts.astimezone(AMSTERDAM).date()
                                        for x in signins)]
    later = [ts for ts in last if ts >= max(learned_from, g.start + timedelta(days=g.days * 0.6))] or \
        [ts for ts in last if ts >= learned_from] or [ts for ts in own if ts >= learned_from]
    learning = [ts for ts in own if ts < own[0] + timedelta(days=3) - timedelta(hours=3)] if own else []
    learning = [ts for ts in learning if ts in last] or learning
    if later:
        t = later[0]
    elif learning:
        t = next((ts for ts in learning if ts >= g.start + timedelta(days=1)), learning[0])
    else:  # a window without a working day of hers: her own sign-in from home is part of the scenario
        t = _scenario_time(g, 0, 9.1 + r.uniform(0, 0.3))
        g.entra(r, t, u, u.homes[0], "OfficeHome", scenario=sid)
    new_country = bool(later)
    t += timedelta(minutes=r.uniform(40, 80))
    # The proxy relays her password and the MFA push: the sign-in is hers, from the proxy's address,
    # with her browser's user agent and no managed device.
    g.entra(r, t, u, _AITM_PROXY, "OfficeHome", mfa="Mobile app notification", ua=u.user_agent, device=False,
            scenario=sid)
    # The stolen session cookie replayed from the attacker's own browser: MFA satisfied by the token.
    g.entra(r, t + timedelta(minutes=r.uniform(4, 9)), u, _AITM_PROXY, "One Outlook Web", ua=_ATTACKER_UA,
            device=False, scenario=sid)
    mine = [rec.timestamp for rec in g.out if rec.scenario == sid]
    return [Scenario(sid, f"Adversary-in-the-middle phishing: {u.email} (HR) opens a fake shared-CV link; a proxy "
                     f"on a VPS in {_AITM_PROXY.city} ({_AITM_PROXY.ip}) relays her password and MFA push, so Entra "
                     "ID logs her successful sign-in to OfficeHome from there within the hour after her own from "
                     "the Netherlands; minutes later the stolen session cookie opens Outlook on the web from the "
                     "same address: impossible travel" + (", and a country new for the account." if new_country
                                                           else " (a new country is still baseline for the account)."),
                     ("impossible_travel", "login_from_new_country") if new_country else ("impossible_travel",),
                     min(mine), max(mine), (u.email, _AITM_PROXY.ip))]


def _laptop(u: DemoUser) -> str:
    return f"ZW-LT-{u.uid % 1000:03d}"


def _benign_windows(g: _Gen) -> None:
    """The office laptops: each working day a logon in the morning (now and then after one
    mistyped password, the near miss of the spray rule: one account at a time), the screen
    unlocked after lunch, a logoff in the evening."""
    r = g.rng("windows")
    for i in range(g.days):
        day = (g.start + timedelta(days=i)).astimezone(AMSTERDAM).date()
        for u in g.c.users:
            if not u.works_on(day) or day.weekday() in u.days_off or (day.weekday() >= 5 and not u.night_shift):
                continue
            laptop = _laptop(u)
            t = _at(day, r.uniform(7.9, 9.4) * H)
            if r.random() < 0.12:
                g.winlogon(t, 4625, laptop, u.username, 0, process="C:\\Windows\\System32\\winlogon.exe")
                t += timedelta(seconds=r.uniform(4, 20))
            lid = r.randint(0x100000, 0xFFFFFF)
            g.winlogon(t, 4624, laptop, u.username, lid, process="C:\\Windows\\System32\\winlogon.exe")
            lunch = _at(day, r.uniform(12.6, 13.4) * H)
            g.winlogon(lunch, 4624, laptop, u.username, lid + 7, logon_type=7,
                       process="C:\\Windows\\System32\\winlogon.exe")
            g.winlogon(_at(day, r.uniform(16.8, 18.5) * H), 4634, laptop, u.username, lid)


def _windows_scenarios(g: _Gen) -> list[Scenario]:
    """A spray through the LogonUser API from a support laptop (PurpleSharp's playbook, as in OTRF's
    recording): eight colleagues' accounts fail within seconds, no source address."""
    sid = WINDOWS_PASSWORD_SPRAY
    r = g.rng(sid)
    day = _weekday_on_or_after(g, int(g.days * 0.45))
    who = next(u for u in g.c.users if u.role == "support" and u.works_on(day))
    laptop = _laptop(who)
    t = _at(day, (12.9 + r.uniform(0, 0.2)) * H)
    targets = [u.username for u in g.c.users if u.left is None and not u.on_leave and u is not who][:8]
    tool = f"C:\\Users\\{who.username}\\Downloads\\PurpleSharp.exe"
    for name in targets:
        t += timedelta(milliseconds=r.uniform(1, 4))
        g.winlogon(t, 4625, laptop, name, 0, process=tool, subject=who.username, scenario=sid)
    mine = [rec.timestamp for rec in g.out if rec.scenario == sid]
    return [Scenario(sid, f"{tool.rsplit(chr(92), 1)[-1]} on {who.username}'s laptop {laptop} tries one password "
                     f"against {len(targets)} colleagues' accounts through the LogonUser API within milliseconds.",
                     (sid,), min(mine), max(mine), (who.username, laptop, *targets))]


def _cloud_and_database_scenarios(g: _Gen) -> list[Scenario]:
    out: list[Scenario] = []

    def span(sid: str) -> tuple[datetime, datetime]:
        mine = [rec.timestamp for rec in g.out if rec.scenario == sid]
        return (min(mine), max(mine)) if mine else (g.start, g.start)

    # The postgres password from an old deploy script: a night-time dump of the customer tables.
    sid = DB_DUMP_AS_POSTGRES
    r = g.rng(sid)
    t = _at(_weekday_on_or_after(g, int(g.days * 0.55)), (22.6 + r.uniform(0, 0.3)) * H)
    lo = g.c.customer_ids[0]
    reads = [f"SELECT * FROM public.customers WHERE id BETWEEN {lo + 500 * k} AND {lo + 500 * k + 499}"
             for k in range(r.randint(130, 160))]
    reads += [f"SELECT * FROM public.claims WHERE customer_id BETWEEN {lo + 5000 * k} AND {lo + 5000 * k + 4999}"
              for k in range(8)]
    g.pg_session(r, t, "postgres", reads, gap=(1.5, 3.5), scenario=sid)
    out.append(Scenario(sid, f"Somebody logs in to the CRM database as postgres at night and pages through "
                        f"public.customers and public.claims ({len(reads)} SELECTs in minutes).",
                        ("db_superuser_login", "db_bulk_select_personal_data"), *span(sid), ("postgres",)))

    # SSRF on app-01: the CRM export instance's role credentials, used from a VPS.
    sid = INSTANCE_CREDENTIALS_STOLEN
    r = g.rng(sid)
    ip = "45.137.21.9"
    inst = "i-07b1d2e3f4a5b6c7d"
    t = _at(_weekday_on_or_after(g, int(g.days * 0.4)), (14.2 + r.uniform(0, 0.5)) * H)
    ident = g.assumed("zorgwijk-crm-export", inst, t - timedelta(hours=1), mfa=False)
    day = t.astimezone(AMSTERDAM).date()
    calls: list[tuple[str, str | None, str | None]] = [("sts:GetCallerIdentity", None, None),
                                                       ("s3:ListBuckets", None, None),
                                                       ("s3:ListObjects", "zorgwijk-customer-exports", "exports/")]
    calls += [("s3:GetObject", "zorgwijk-customer-exports",
               f"exports/{day - timedelta(days=k)}/customers-delta.csv.gz") for k in range(1, 4)]
    for call, bucket, key in calls:
        t += timedelta(seconds=r.uniform(5, 40))
        g.api(r, t, ident, ip, _CLI_UA, call, sid, bucket=bucket, key=key)
    out.append(Scenario(sid, f"The role credentials of the CRM export instance ({inst}), read through an SSRF on "
                        f"app-01, are used from {ip} to list the buckets and download customer exports.",
                        ("aws_instance_credentials_outside_aws",), *span(sid), (inst, ip)))
    return out


# --------------------------------------------------------------------------------------------
# Google: the analytics project's Cloud Audit Logs and the data team's Workspace

#: the data team of the analytics project: True for those who query BigQuery, False for those who
#: only read (and keep) the reports in Drive
DATA_TEAM: dict[str, bool] = {"emeijer": True, "jdevries": True, "gprins": True, "mkoster": False,
                              "hwillems": False}
_GCP_LOADER = "crm-export-loader"  # the service account of the nightly load, <name>@<project>.iam.gserviceaccount.com
_EXPORT_EIP = "3.74.183.52"  # the CRM export instance's Elastic IP (AWS eu-central-1), where the nightly load runs
_GCLOUD = ("google-cloud-sdk gcloud/502.0.0 command/gcloud.{cmd} invocation-id/{inv} environment/None "
           "environment-version/None client-os/LINUX client-os-ver/6.1.0 client-pltf-arch/x86_64 interactive/False "
           "from-script/True python/3.11.2 term/ (Linux 6.1.0-26-cloud-amd64),gzip(gfe)")
_LOWER = "0123456789abcdefghijklmnopqrstuvwxyz"
_HEX = "0123456789abcdef"
#: pseudonymised tables of the analytics project (no names, no BSN: the load job pseudonymises)
_BQ_TABLES = ("claims_pseudo.claims", "policies_pseudo.policies", "finance.premium_income")
_BQ_QUERIES: tuple[tuple[str, str], ...] = (  # (table, query)
    ("claims_pseudo.claims", "SELECT DATE_TRUNC(claim_date, MONTH) AS month, category, SUM(amount_eur) AS total "
     "FROM `zorgwijk-analytics.claims_pseudo.claims` GROUP BY 1, 2 ORDER BY 1"),
    ("claims_pseudo.claims", "SELECT provider_type, COUNT(*) AS n, APPROX_QUANTILES(amount_eur, 4) AS q "
     "FROM `zorgwijk-analytics.claims_pseudo.claims` WHERE claim_date >= DATE_SUB(CURRENT_DATE(), INTERVAL 90 DAY) "
     "GROUP BY 1"),
    ("policies_pseudo.policies", "SELECT product, COUNT(*) AS policies FROM `zorgwijk-analytics.policies_pseudo."
     "policies` WHERE status = 'active' GROUP BY product"),
    ("policies_pseudo.policies", "SELECT region, AVG(premium_eur) AS avg_premium FROM `zorgwijk-analytics."
     "policies_pseudo.policies` GROUP BY region ORDER BY 2 DESC"),
    ("finance.premium_income", "SELECT period, product, income_eur FROM `zorgwijk-analytics.finance.premium_income` "
     "WHERE period >= '2026-01' ORDER BY period"),
)
#: the data team's shared reports in Drive: (title, type, owner, visibility)
_DRIVE_DOCS: tuple[tuple[str, str, str, str], ...] = (
    ("Schadelast per maand 2026", "spreadsheet", "gprins", "shared_internally"),
    ("Premie-inkomsten Q4 2026", "spreadsheet", "mkoster", "shared_internally"),
    ("Churn-analyse polishouders", "document", "emeijer", "people_within_domain_with_link"),
    ("Datamodel claims_pseudo", "document", "jdevries", "shared_internally"),
    ("DPIA analyseplatform zorgwijk-analytics", "document", "hwillems", "shared_internally"),
)


def _gcp_ts(ts: datetime, nanos: int | None = None) -> str:
    """Cloud Logging's timestamps: UTC, microseconds (``timestamp``) or nanoseconds (``receiveTimestamp``)."""
    u = ts.astimezone(UTC)
    frac = f"{u.microsecond:06d}" if nanos is None else f"{u.microsecond:06d}{nanos:03d}"
    return f"{u:%Y-%m-%dT%H:%M:%S}.{frac}Z"


def _profile_id(username: str) -> str:
    """A Google account's profile id (21 digits), stable per person."""
    return "1" + str(int(hashlib.sha256(f"google:{username}".encode()).hexdigest(), 16))[:20]

def _bool(name: str, value: bool) -> dict[str, Any]:
    return {"name": name, "boolValue": value}


def _google_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block, first: bool) -> None:
    """The data team at work in Google: now and then (the Google session lasts about a week) a
    sign-in with 2-Step Verification when the day starts, once in a while after a mistyped
    password; the team's reports in Drive read, their owners editing them; BigQuery in the Cloud
    console for those who query: a table looked up, a few queries on the pseudonymised tables,
    rarely a table of their own made in the scratch dataset (Admin Activity)."""
    ip = b.place.ip
    t = b.start + timedelta(seconds=r.uniform(120, 1200))
    if first and r.random() < 0.2:
        if r.random() < 0.05:
            g.gworkspace(r, t, u, ip, "login", "login", "login_failure", [
                {"name": "login_type", "value": "google_password"},
                {"name": "login_challenge_method", "multiValue": ["password"]},
                {"name": "login_failure_type", "value": "login_failure_invalid_password"},
                _bool("is_suspicious", False)])
            t += timedelta(seconds=r.uniform(6, 30))
        g.gworkspace(r, t, u, ip, "login", "login", "login_success", [
            {"name": "login_type", "value": "google_password"},
            {"name": "login_challenge_method", "multiValue": ["password", "google_prompt"]},
            _bool("is_second_factor", True), _bool("is_suspicious", False)])
    docs = [d for d in _DRIVE_DOCS if d[2] == u.username or r.random() < 0.3]
    for title, dtype, owner, visibility in docs:
        if r.random() < 0.5:
            continue
        name = "edit" if owner == u.username and r.random() < 0.4 else "view"
        g.gworkspace(r, _when(r, b), u, ip, "drive", "access", name, [
            _bool("primary_event", True), _bool("billable", True), {"name": "owner", "value": f"{owner}@zorgwijk.nl"},
            _bool("owner_is_shared_drive", False), {"name": "doc_id", "value": _hid("doc", title, 44, _B62 + "-_")},
            {"name": "doc_title", "value": title}, {"name": "doc_type", "value": dtype},
            {"name": "visibility", "value": visibility}, _bool("actor_is_collaborator_account", False)])
    if not DATA_TEAM[u.username] or r.random() < 0.35:
        return
    c = g.c
    ua = u.user_agent + ",gzip(gfe)"
    t = _when(r, b)
    table = r.choice(_BQ_TABLES if u.role == "engineer" else _BQ_TABLES[1:])
    ds, tb = table.split(".")
    g.gcp(r, t, u.email, ip, ua, "bigquery.googleapis.com", "google.cloud.bigquery.v2.TableService.GetTable",
          f"projects/{c.gcp_project}/datasets/{ds}/tables/{tb}", "bigquery.tables.get",
          auth_resource=f"projects/{c.gcp_project}/datasets/{ds}/tables/{tb}")
    mine = [q for q in _BQ_QUERIES if u.role == "engineer" or not q[0].startswith("claims")]
    for _ in range(r.randint(1, 5)):
        t += timedelta(seconds=r.uniform(40, 900))
        if t >= b.end:
            break
        table, query = r.choice(mine)
        job = f"bquxjob_{_rid(r, 8, _HEX)}_{_rid(r, 11, _HEX)}"  # the console's job ids
        g.gcp(r, t, u.email, ip, ua, "bigquery.googleapis.com", "google.cloud.bigquery.v2.JobService.InsertJob",
              f"projects/{c.gcp_project}/jobs/{job}", "bigquery.jobs.create",
              metadata=_bq_job(g, r, t, job, "QUERY", query, [table]))
    if u.role == "engineer" and r.random() < 0.08:
        t += timedelta(seconds=r.uniform(30, 300))
        name = f"{u.username}_{_rid(r, 6, _LOWER)}"
        g.gcp(r, t, u.email, ip, ua, "bigquery.googleapis.com", "google.cloud.bigquery.v2.TableService.InsertTable",
              f"projects/{c.gcp_project}/datasets/scratch/tables/{name}", "bigquery.tables.create", log="activity",
              auth_resource=f"projects/{c.gcp_project}/datasets/scratch",
              metadata={"@type": "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata",
                        "tableCreation": {"table": {"tableName": f"projects/{c.gcp_project}/datasets/scratch/tables/"
                                                                 f"{name}", "schemaJson": "{}",
                                                    "createTime": _gcp_ts(t), "updateTime": _gcp_ts(t)},
                                          "reason": "TABLE_INSERT_REQUEST"}})


def _bq_job(g: _Gen, r: random.Random, t: datetime, jid: str, kind: str, query: str, tables: list[str], *,
            source: str | None = None) -> dict[str, Any]:
    """The ``metadata`` of a finished BigQuery job (``BigQueryAuditMetadata.jobInsertion``)."""
    p = g.c.gcp_project
    refs = [f"projects/{p}/datasets/{t.split('.')[0]}/tables/{t.split('.')[1]}" for t in tables]
    if kind == "QUERY":
        config: dict[str, Any] = {"type": "QUERY", "queryConfig": {
            "query": query, "destinationTable": f"projects/{p}/datasets/_{_rid(r, 40, _HEX)}/tables/"
                                                f"anon{_rid(r, 32, _HEX)}",
            "createDisposition": "CREATE_IF_NEEDED", "writeDisposition": "WRITE_TRUNCATE",
            "priority": "QUERY_INTERACTIVE", "statementType": "SELECT"}}
        stats: dict[str, Any] = {"queryStats": {"totalProcessedBytes": str(r.randint(2_000_000, 900_000_000)),
                                                "totalBilledBytes": str(r.randint(10, 900) * 1_048_576),
                                                "billingTier": 1, "referencedTables": refs,
                                                "outputRowCount": str(r.randint(4, 400))}}
    else:
        config = {"type": "IMPORT", "loadConfig": {"sourceUris": [source], "destinationTable": refs[0],
                                                   "createDisposition": "CREATE_NEVER",
                                                   "writeDisposition": "WRITE_APPEND"}}
        stats = {"loadStats": {"totalOutputBytes": str(r.randint(200_000, 40_000_000))}}
    created = t - timedelta(seconds=r.uniform(0.8, 6))
    stats.update({"createTime": _gcp_ts(created), "startTime": _gcp_ts(created + timedelta(milliseconds=90)),
                  "endTime": _gcp_ts(t - timedelta(milliseconds=40)), "totalSlotMs": str(r.randint(40, 90_000))})
    return {"@type": "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata",
            "jobInsertion": {"job": {"jobName": f"projects/{p}/jobs/{jid}", "jobConfig": config,
                                     "jobStatus": {"jobState": "DONE"}, "jobStats": stats},
                             "reason": "JOB_INSERT_REASON_UNSPECIFIED"}}


def _benign_gcp_load(g: _Gen) -> None:
    """The nightly load of the analytics project: at about 02:15 the CRM export instance (AWS) copies
    the night's pseudonymised extracts to the landing bucket and loads them into BigQuery, with
    the loader service account's key (Cloud Storage data-write audit logs are on for the bucket)."""
    r = g.rng("gcp-load")
    c = g.c
    sa = f"{_GCP_LOADER}@{c.gcp_project}.iam.gserviceaccount.com"
    key = (f"//iam.googleapis.com/projects/{c.gcp_project}/serviceAccounts/{sa}/keys/"
           f"{_hid('gcp-key', sa, 40, _HEX)}")
    bucket = f"{c.gcp_project}-landing"
    for day in g.local_days:
        t = _at(day, 2.25 * H + r.uniform(-120, 600))
        inv = _uuid(r)
        objects = []
        for table in _BQ_TABLES:
            t += timedelta(seconds=r.uniform(2, 25))
            obj = f"crm/{day.isoformat()}/{table.split('.')[1]}.csv.gz"
            objects.append((table, obj))
            g.gcp(r, t, sa, _EXPORT_EIP, _GCLOUD.format(cmd="storage.cp", inv=inv), "storage.googleapis.com",
                  "storage.objects.create", f"projects/_/buckets/{bucket}/objects/{obj}", "storage.objects.create",
                  auth_resource=f"projects/_/buckets/{bucket}/objects/{obj}", key=key, location=True,
                  resource=("gcs_bucket", {"bucket_name": bucket, "location": c.gcp_location}))
        inv = _uuid(r)
        for table, obj in objects:
            t += timedelta(seconds=r.uniform(8, 70))
            job = f"bqjob_r{_rid(r, 16, _HEX)}_{_rid(r, 16, _HEX)}_1"  # the bq tool's job ids
            g.gcp(r, t, sa, _EXPORT_EIP, _GCLOUD.format(cmd="bq.load", inv=inv), "bigquery.googleapis.com",
                  "google.cloud.bigquery.v2.JobService.InsertJob", f"projects/{c.gcp_project}/jobs/{job}",
                  "bigquery.jobs.create", key=key,
                  metadata=_bq_job(g, r, t, job, "IMPORT", "", [table], source=f"gs://{bucket}/{obj}"))


# --------------------------------------------------------------------------------------------
# The office's web proxy (Squid)

PROXY_HOST = "proxy-01"  # Squid 5.7 on Debian 12 in the office, 10.30.0.2; laptops get 10.30.0.100 + n by DHCP
#: where the office browses through the proxy, per role (the PAC file sends *.zorgwijk.nl direct)
_WEB_ALL = ("zorgwijk.okta.com", "outlook.office.com", "teams.microsoft.com", "login.microsoftonline.com",
            "www.google.com")
_WEB_ROLE: dict[str, tuple[str, ...]] = {
    "engineer": ("github.com", "api.github.com", "pypi.org", "files.pythonhosted.org", "registry-1.docker.io",
                 "console.cloud.google.com", "docs.google.com"),
    "sre": ("github.com", "eu-central-1.console.aws.amazon.com", "registry-1.docker.io", "status.aws.amazon.com"),
    "admin": ("eu-central-1.console.aws.amazon.com", "admin.microsoft.com", "zorgwijk-admin.okta.com"),
    "finance": ("mijn.ing.nl", "docs.google.com", "www.belastingdienst.nl", "zorgwijk.app.box.com"),
    "support": ("www.zorginstituutnederland.nl", "www.vektis.nl"),
    "hr": ("www.rijksoverheid.nl", "app.afas.nl", "zorgwijk.app.box.com"),
    "dpo": ("www.autoriteitpersoonsgegevens.nl", "docs.google.com", "edpb.europa.eu"),
    "contractor": ("github.com",),
}
_WEB_IPS: dict[str, str] = {  # the address Squid connected to (HIER_DIRECT/<ip>)
    "zorgwijk.okta.com": "18.158.47.205", "zorgwijk-admin.okta.com": "18.158.47.205",
    "outlook.office.com": "52.97.219.194", "teams.microsoft.com": "52.113.194.132",
    "login.microsoftonline.com": "20.190.159.2", "admin.microsoft.com": "20.190.151.8",
    "www.google.com": "142.250.179.196", "docs.google.com": "142.251.39.110",
    "console.cloud.google.com": "142.250.179.142", "github.com": "140.82.121.3", "api.github.com": "140.82.121.6",
    "pypi.org": "151.101.128.223", "files.pythonhosted.org": "151.101.64.223",
    "registry-1.docker.io": "54.236.113.205", "eu-central-1.console.aws.amazon.com": "3.120.181.40",
    "status.aws.amazon.com": "18.66.102.12", "mijn.ing.nl": "145.221.168.4", "www.belastingdienst.nl": "195.121.6.197",
    "www.zorginstituutnederland.nl": "147.181.97.54", "www.vektis.nl": "185.37.129.80",
    "www.rijksoverheid.nl": "147.181.97.29", "app.afas.nl": "185.80.184.40",
    "www.autoriteitpersoonsgegevens.nl": "147.181.97.134", "edpb.europa.eu": "52.58.202.21",
    "zorgwijk.app.box.com": "74.112.186.157", "ctldl.windowsupdate.com": "93.184.221.240",
    "ocsp.digicert.com": "192.229.211.108",
}
#: the proxy's blocklist (file sharing and webmail outside the company: the data-loss policy)
_WEB_BLOCKED = ("wetransfer.com", "mega.nz", "mail.proton.me")


def _lan_ip(g: _Gen, u: DemoUser) -> str:
    """The laptop's office address (a fixed DHCP lease)."""
    return f"10.30.0.{100 + g.c.users.index(u)}"


def _proxy_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block) -> None:
    """The laptop's web traffic through the office proxy while the person works at the office:
    the browser's first request answered 407 (Kerberos proxy authentication, then sent again with
    the ticket), HTTPS tunnels (CONNECT, TCP_TUNNEL) to the day's SaaS and sites of the role,
    certificate revocation checks in plain HTTP on Windows, and rarely a blocked file-sharing or
    webmail site (TCP_DENIED/403): the near miss of a data-loss attempt."""
    if b.place not in g.c.office:
        return
    ip = _lan_ip(g, u)
    hosts = _WEB_ALL + _WEB_ROLE.get(u.role, ())
    t = b.start + timedelta(seconds=r.uniform(20, 240))
    first = r.choice(_WEB_ALL[:3])
    g.squid(t, r.randint(0, 2), ip, "TCP_DENIED", 407, r.randint(3_900, 4_100), "CONNECT", f"{first}:443", None,
            "HIER_NONE", None, "text/html")
    times = sorted(_when(r, b) for _ in range(r.randint(4, 12)))
    dur = r.randint(30_000, 900_000)
    g.squid(t + timedelta(milliseconds=dur), dur, ip, "TCP_TUNNEL", 200, r.randint(8_000, 3_000_000), "CONNECT",
            f"{first}:443", u.username, "HIER_DIRECT", _WEB_IPS[first], "-")
    for ts in times:
        host = r.choice(hosts)
        dur = r.randint(300, 600_000)
        g.squid(ts + timedelta(milliseconds=dur), dur, ip, "TCP_TUNNEL", 200, r.randint(4_000, 2_500_000), "CONNECT",
                f"{host}:443", u.username, "HIER_DIRECT", _WEB_IPS[host], "-")
    if _BROWSERS[u.browser][1].startswith("Windows") and r.random() < 0.6:
        ts = _when(r, b)
        if r.random() < 0.5:
            cab = "application/vnd.ms-cab-compressed"
            code, status, size = ("TCP_REFRESH_UNMODIFIED", 304, 312) if r.random() < 0.7 else \
                ("TCP_MISS", 200, r.randint(70_000, 80_000))
            g.squid(ts, r.randint(20, 140), ip, code, status, size, "GET",
                    "http://ctldl.windowsupdate.com/msdownload/update/v3/static/trustedr/en/disallowedcertstl.cab",
                    u.username, "HIER_DIRECT", _WEB_IPS["ctldl.windowsupdate.com"], cab)
        else:
            g.squid(ts, r.randint(15, 90), ip, "TCP_MISS", 200, r.randint(850, 2_300), "POST", "http://ocsp.digicert.com/",
                    u.username, "HIER_DIRECT", _WEB_IPS["ocsp.digicert.com"], "application/ocsp-response")
    if r.random() < 0.02:
        g.squid(_when(r, b), r.randint(0, 3), ip, "TCP_DENIED", 403, r.randint(3_900, 4_200), "CONNECT",
                f"{r.choice(_WEB_BLOCKED)}:443", u.username, "HIER_NONE", None, "text/html")


# --------------------------------------------------------------------------------------------
# Box: HR's and finance's file exchange with the payroll bureau and the occupational health service

#: who works in Box: HR (personnel files, contracts) and finance (payroll)
BOX_USERS = ("wdejong", "kbrouwer", "pvanleeuwen", "mkoster", "gprins", "hdevos")
#: folder -> (owner, files): (name, size in bytes)
_BOX_FOLDERS: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {
    "Personeelsdossiers": ("wdejong", (("Arbeidsovereenkomst template 2026.docx", 48_211),
                                       ("Verzuimregistratie Q4 2026.xlsx", 91_540),
                                       ("Functieprofielen Klantenservice.pdf", 312_077))),
    "Salarisadministratie": ("gprins", (("Mutaties salaris november 2026.xlsx", 38_902),
                                             ("Loonjournaal oktober 2026.pdf", 644_118),
                                             ("Pensioenpremies 2026.xlsx", 57_300))),
    "Arbodienst": ("kbrouwer", (("Contract arbodienst 2026.pdf", 204_551),
                                ("Afspraken re-integratie (sjabloon).docx", 33_890))),
}
_BOX_APP = "Box Web App"


def _box_id(kind: str, key: str, n: int) -> str:
    """Box's numeric ids (users, files, folders), stable per name."""
    return str(int(hashlib.sha256(f"box:{kind}:{key}".encode()).hexdigest(), 16))[:n]


def _box_user(u: DemoUser) -> dict[str, Any]:
    return {"type": "user", "id": _box_id("user", u.username, 11), "name": u.full_name, "login": u.email}


def _box_block(g: _Gen, r: random.Random, u: DemoUser, b: _Block, first: bool) -> None:
    """HR and finance in Box (single sign-on from Okta): a sign-in most mornings, files of their
    folders previewed and now and then downloaded, and an upload of a new version by the folder's
    owner (the payroll changes of the month, the absence register)."""
    session = _rid(r, 22, _LOWER)  # the browser's Box session of this block of work
    login = b.start + timedelta(seconds=r.uniform(60, 900))
    if first and r.random() < 0.7:
        g.box(r, login, u, b.place.ip, session, "LOGIN", _box_user(u), None)
    mine = [f for f, (owner, _) in _BOX_FOLDERS.items()
            if (f == "Salarisadministratie") == (u.role == "finance") or owner == u.username]
    for _ in range(r.randint(0, 4)):
        folder = r.choice(mine)
        owner, files = _BOX_FOLDERS[folder]
        name, size = r.choice(files)
        roll = r.random()
        action = "UPLOAD" if owner == u.username and roll < 0.1 else "DOWNLOAD" if roll < 0.3 else "PREVIEW"
        size += r.randint(-900, 900) if action == "UPLOAD" else 0
        src = {"item_type": "file", "item_id": _box_id("file", name, 13), "item_name": name,
               "parent": {"type": "folder", "name": folder, "id": _box_id("folder", folder, 12)},
               "owned_by": _box_user(g.c.user(owner))}
        details = {"size": size, "version_id": _box_id("version", f"{name}:{size}", 13), "service_id": "0",
                   "service_name": _BOX_APP}
        g.box(r, max(_when(r, b), login + timedelta(seconds=r.uniform(20, 120))), u, b.place.ip, session, action,
              src, details)


def generate(*, seed: int = 7, days: int = 3, start: datetime | None = None, scenarios: bool = True,
             company: DemoCompany = COMPANY) -> tuple[list[DemoRecord], list[Scenario]]:
    """Generate ``days`` days of raw access-log traffic from ``start`` (UTC; default 2026-11-02, a Monday).

    Returns the records sorted by timestamp, and the injected scenarios (none if ``scenarios`` is
    False). The same seed and start give byte-identical records. Scenario records carry the
    scenario id; benign records carry None. Benign traffic is the same with or without scenarios,
    except that GitHub events report the demo repository as public while it is.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    g = _Gen(company, seed, start, days)
    found: list[Scenario] = []
    attack: list[DemoRecord] = []
    sg = _Gen(company, seed, start, days, prefix="s")  # their own generator (own process ids)
    if scenarios:
        # The one fact of the scenarios that benign traffic reflects: while the repository is public.
        repo, t, t2 = _public_window(sg, sg.rng(GITHUB_REPO_MADE_PUBLIC))
        g.public_from[repo] = (_trunc(t, "ms"), _trunc(t2, "ms"))
    _benign_people(g)
    _benign_systems(g)
    _benign_kubernetes(g)
    _benign_database(g)
    _benign_windows(g)
    _benign_gcp_load(g)
    if scenarios:
        # After benign traffic: some attacks are timed by what the victim did.
        found = [sc for sc in _scenarios(sg, g.out) if days >= SCENARIO_MIN_DAYS.get(sc.id, 1)]
        keep = {sc.id for sc in found}
        attack = [rec for rec in sg.out if rec.scenario in keep]
    records = g.out + attack
    records.sort(key=lambda rec: rec.timestamp)
    _renumber(records, g.rng("pids"))
    attack = [rec for rec in records if rec.scenario is not None]
    final: list[Scenario] = []
    for sc in found:
        mine = [rec for rec in attack if rec.scenario == sc.id]
        final.append(Scenario(sc.id, sc.description, sc.expected_rules, mine[0].timestamp if mine else sc.start,
                              max(rec.timestamp for rec in mine) if mine else sc.end, sc.actors, sc.subject_ids,
                              len(mine)))
    return records, final


_TOKEN = re.compile(rb"\x01([PSA])([^\x02]*)\x02")
_PID_BASE = {SRC_BASTION: 41200, SRC_DB: 23100, SRC_APP: 30400}
_SESSION_BASE = {SRC_BASTION: 1180, SRC_DB: 512, SRC_APP: 733}
#: the host whose numbers a source shares (db-01's audit.log names the processes and sessions of its auth.log)
_HOST_OF = {SRC_DB_AUDIT: SRC_DB}
_SERIAL_BASE = 48_211


def _renumber(records: list[DemoRecord], r: random.Random) -> None:
    """Give syslog and audit lines real process, session and audit serial numbers, increasing with time.

    Generation runs user by user, not in time order, so the numbers are placeholders until the
    records are sorted; a connection's first line is its earliest, so first seen = first allocated.
    """
    pids = dict(_PID_BASE)
    sessions = dict(_SESSION_BASE)
    serial = _SERIAL_BASE
    seen: dict[bytes, bytes] = {}
    for i, rec in enumerate(records):
        if rec.log_type not in (SYSLOG, AUDITD) or b"\x01" not in rec.data:
            continue
        src = _HOST_OF.get(rec.source, rec.source)

        def number(m: re.Match[bytes], src: str = src) -> bytes:
            nonlocal serial
            key = m[0]
            got = seen.get(key)
            if got is None:
                if m[1] == b"A":  # an audit serial: one per record, in time order
                    serial += 1
                    got = str(serial).encode()
                elif m[1] == b"P":
                    pids[src] += r.randint(3, 140)
                    if pids[src] > 4_000_000:  # pid_max wraps
                        pids[src] = 1000
                    got = str(pids[src]).encode()
                else:
                    sessions[src] += 1
                    got = str(sessions[src]).encode()
                seen[key] = got
            return got

        records[i] = replace(rec, data=_TOKEN.sub(number, rec.data))


def write_files(records: Iterable[DemoRecord], directory: str | Path) -> dict[str, Path]:
    """Write one log file per source into ``directory`` (created if needed), one record per line.

    Returns source -> path. Existing files of the same names are overwritten. Feed the directory
    to ``access-audit run --input DIR``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    handles: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    try:
        for rec in records:
            fh = handles.get(rec.source)
            if fh is None:
                name = SOURCES.get(rec.source, (rec.source.split(":", 1)[-1].replace("/", "_") + ".log", ""))[0]
                paths[rec.source] = d / name
                fh = handles[rec.source] = paths[rec.source].open("wb")
            fh.write(rec.data)
            fh.write(b"\n")
    finally:
        for fh in handles.values():
            fh.close()
    return paths


def iter_scenario(records: Iterable[DemoRecord], scenario_id: str) -> Iterator[DemoRecord]:
    """The records one scenario produced (its ground truth), in order."""
    return (rec for rec in records if rec.scenario == scenario_id)
