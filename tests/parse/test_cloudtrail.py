"""CloudTrail parser: real Panther fixtures, the OTRF exfiltration capture, CloudTrail files,
and malformed records (which must become dead letters with a reason, never exceptions)."""

from __future__ import annotations

import orjson
import pytest

from access_audit.core.events import AccessEvent, Outcome
from access_audit.core.records import DeadLetter, RawRecord

TIME_KEYS = ("eventTime", "@timestamp", "p_event_time")
LOG_TYPE = "aws.cloudtrail"
OTRF = "otrf_aws_cloudtrail/ec2_proxy_s3_exfiltration_2020-09-14011940.json"

MINIMAL = {"eventVersion": "1.08", "eventTime": "2024-05-01T10:00:00Z", "eventSource": "s3.amazonaws.com",
           "eventName": "GetObject", "awsRegion": "eu-west-1", "sourceIPAddress": "198.51.100.7",
           "userIdentity": {"type": "IAMUser", "userName": "bob", "principalId": "AIDAX", "accountId": "111122223333"},
           "requestParameters": {"bucketName": "patients", "key": "2024/records.csv"}, "readOnly": True,
           "recipientAccountId": "111122223333"}


@pytest.fixture(scope="module")
def rows(panther):
    return panther("AWS.CloudTrail")


def test_panther_dataset_parses_and_autodetects(rows, run_dataset):
    rep = run_dataset(rows, LOG_TYPE, TIME_KEYS)
    rep.assert_ok()
    assert rep.parsed >= 450  # 456 of 475; the rest carry no time or a placeholder ("redacted", "...")


def test_console_login_without_mfa(rows, find, parse_one):
    ev = parse_one(find(rows, "No MFA Login - IAM User"), LOG_TYPE)
    assert isinstance(ev, AccessEvent)
    assert ev.event.action == "ConsoleLogin"
    assert ev.event.category == ["authentication"]
    assert ev.event.outcome is Outcome.success
    assert ev.authentication is not None and ev.authentication.mfa is False
    assert ev.user is not None and ev.user.name == "tester" and ev.user.domain == "123456789012"
    assert ev.source is not None and ev.source.ip == "111.111.111.111"
    assert ev.related.ip == ["111.111.111.111"] and ev.related.user == ["tester"]
    assert ev.timestamp.isoformat() == "2019-01-01T00:00:00+00:00"


def test_failed_console_login(rows, find, parse_one):
    ev = parse_one(find(rows, "Unsuccessful Login w/ MFA"), LOG_TYPE)
    assert ev.event.outcome is Outcome.failure
    assert ev.event.reason == "Failed authentication"
    assert ev.authentication.mfa is True


def test_stop_logging_by_assumed_role(rows, find, parse_one):
    ev = parse_one(find(rows, "CloudTrail Was Stopped"), LOG_TYPE)
    assert ev.event.action == "StopLogging"
    assert ev.event.provider == "cloudtrail.amazonaws.com"
    assert ev.event.category == ["configuration"] and ev.event.type == ["change"]
    assert ev.event.outcome is Outcome.success
    assert ev.user.name == "tester" and ev.user.roles == ["tester"]
    assert ev.labels["aws_identity_type"] == "AssumedRole"
    assert ev.cloud.provider == "aws" and ev.cloud.region == "us-west-2"
    assert ev.cloud.account == {"id": "123456789012"}


def test_create_access_key_for_another_user(rows, find, parse_one):
    ev = parse_one(find(rows, "user1 create keys for user2"), LOG_TYPE)
    assert ev.event.action == "CreateAccessKey"
    assert ev.event.category == ["iam"]
    assert "creation" in ev.event.type
    assert ev.user.name == "user1"
    assert ev.user.target is not None and ev.user.target.name == "user2"
    assert ev.related.user == ["user1", "user2"]
    # a service principal, not an address: source.domain, and no related.ip
    assert ev.source.domain == "cloudformation.amazonaws.com" and ev.source.ip is None
    assert ev.related.ip == []


def test_error_code_is_failure_with_reason(rows, find, parse_one):
    ev = parse_one(find(rows, "VPC Endpoint Access Denied"), LOG_TYPE)
    assert ev.event.outcome is Outcome.failure
    assert ev.event.reason == "VpceAccessDenied"
    assert ev.resource.type == "object"
    assert ev.resource.name == "example-bucket/sensitive-file.txt"


def test_stringified_request_parameters_are_decoded(rows, find, parse_one):
    # A Panther fixture stores requestParameters/responseElements as JSON strings.
    ev = parse_one(find(rows, "Non-Account-Creation Event"), LOG_TYPE)
    assert isinstance(ev, AccessEvent)
    assert ev.event.action == "CreateAccount"


def test_otrf_capture_all_parse_with_logstash_timestamp(datasets, registry):
    lines = (datasets / OTRF).read_bytes().splitlines()
    assert len(lines) == 103
    events: list[AccessEvent] = []
    for i, line in enumerate(lines):
        res = registry.parse(RawRecord(data=line, origin=f"{OTRF}:{i + 1}", source=OTRF))
        assert res.events, f"line {i + 1}: {res.dead_letters[0].reason}"
        assert res.events[0].event.dataset == LOG_TYPE
        events.extend(res.events)
    assert min(e.timestamp for e in events).isoformat() == "2020-09-14T00:44:20+00:00"
    assert max(e.timestamp for e in events).isoformat() == "2020-09-14T01:13:20+00:00"

    gets = [e for e in events if e.event.action == "GetObject"]
    assert len(gets) == 2
    for ev in gets:
        # the stolen instance-profile credentials, used from outside AWS
        assert ev.user.name == "i-0317f6c6b66ae9c40"
        assert ev.user.roles == ["MordorNginxStack-BankingWAFRole-9S3E0UAE1MM0"]
        assert ev.source.ip == "1.2.3.4"
        assert ev.resource.type == "object"
        assert ev.resource.name.startswith("mordors3stack-s3bucket-llp2yingx64a/")
        assert ev.event.type == ["access"] and ev.event.outcome is Outcome.success
    console = [e for e in events if e.user and e.user.name == "pedro"]
    assert console and all(e.source.ip == "1.2.3.4" for e in console)
    service = [e for e in events if e.event.action == "AssumeRole"]
    assert service and all(e.source.domain == "ec2.amazonaws.com" and e.source.ip is None for e in service)


def test_cloudtrail_file_object_yields_one_event_per_record(registry):
    second = {**MINIMAL, "eventName": "PutObject", "readOnly": False}
    data = orjson.dumps({"Records": [MINIMAL, second]})
    res = registry.parse(RawRecord(data=data, origin="s3://trail/file.json.gz", source="s3"))
    assert [e.event.action for e in res.events] == ["GetObject", "PutObject"]
    assert len({e.id for e in res.events}) == 2
    assert res.events[0].resource.id == "arn:aws:s3:::patients/2024/records.csv"


def test_bad_record_inside_a_file_names_its_index(parse_one):
    dl = parse_one({"Records": [MINIMAL, {**MINIMAL, "sourceIPAddress": 123}]})
    assert isinstance(dl, DeadLetter)
    assert "Records[1].sourceIPAddress is int, expected string" in dl.reason


def test_case_insensitive_keys_from_data_lake_exports(parse_one):
    lowered = {k.lower(): v for k, v in MINIMAL.items()}
    ev = parse_one(lowered)
    assert isinstance(ev, AccessEvent) and ev.event.dataset == LOG_TYPE
    assert ev.user.name == "bob" and ev.source.ip == "198.51.100.7"


@pytest.mark.parametrize(("data", "reason"), [
    (b'{"eventName": "GetObject", "eventTime": "2024-05-01T10:00:00Z", "userIdent', "invalid JSON"),
    (b"\x00\xff\xfe\x00garbage\x01", "invalid JSON"),
    (b"[1, 2, 3]", "expected an object"),
    (orjson.dumps({**MINIMAL, "sourceIPAddress": 123}), "sourceIPAddress is int, expected string"),
    (orjson.dumps({**MINIMAL, "userIdentity": ["bob"]}), "userIdentity is list, expected object"),
    (orjson.dumps({**MINIMAL, "userIdentity": {"type": "IAMUser", "userName": {"weird": 1}}}),
     "userIdentity.userName is dict, expected string"),
    (orjson.dumps({**MINIMAL, "eventName": None}), "missing field"),
    (orjson.dumps({**MINIMAL, "Records": {"a": 1}}), "Records is dict, expected list"),
    (orjson.dumps({k: v for k, v in MINIMAL.items() if k != "eventTime"}), "missing timestamp"),
    (orjson.dumps({**MINIMAL, "eventTime": "yesterday"}), "invalid timestamp"),
    (orjson.dumps({**MINIMAL, "eventTime": "1800-01-01T00:00:00Z"}), "implausible timestamp"),
    (orjson.dumps({**MINIMAL, "eventTime": "9999-12-31T23:59:59Z"}), "timestamp in the future"),
    (orjson.dumps({**MINIMAL, "eventTime": 9_000_000_000_000_000_000}), "out of range"),
    (orjson.dumps({**MINIMAL, "eventTime": "2" * 5_000_000}), "record too large"),
    (orjson.dumps({**MINIMAL, "eventTime": "2" * 500_000}), "500000-character string"),
])
def test_malformed_records_become_dead_letters(parse_one, data, reason):
    dl = parse_one(data, LOG_TYPE)
    assert isinstance(dl, DeadLetter), "expected a dead letter, got an event"
    assert reason in dl.reason
    assert dl.raw == data and dl.stage == "parse"
    auto = parse_one(data)  # auto-detect: refused too (by this parser or as unrecognised), never raised
    assert isinstance(auto, DeadLetter) and auto.reason


def test_same_record_twice_gives_the_same_id(registry):
    def parse(log_type, origin, occurrence):
        rec = RawRecord(data=orjson.dumps(MINIMAL), origin=origin, source="t", log_type=log_type,
                        occurrence=occurrence)
        return registry.parse(rec).events[0]

    a = parse(LOG_TYPE, "f.json:7", 0)
    b = parse(None, "renamed.json:7", 0)  # ids hash stream, bytes and occurrence, not the path (scheme 2)
    c = parse(LOG_TYPE, "f.json:8", 1)  # the same bytes again in the same input: another event
    assert a.id == b.id != c.id
    assert a.to_doc() == b.to_doc()
