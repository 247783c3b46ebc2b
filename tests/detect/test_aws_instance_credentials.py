"""aws_instance_credentials_outside_aws on the real OTRF CloudTrail sample (otrf_aws_cloudtrail).

The whole dataset folder is read as the CLI reads it (LineReader: the 103 JSON Lines records of
ec2_proxy_s3_exfiltration and the 301 rows of the honey-bucket CSV) and parsed by the registry.
The rule must flag exactly the 11 calls made with the stolen instance-role credentials
(AssumedRole ``.../i-0317f6c6b66ae9c40`` from 1.2.3.4: 7 ListObjects, 2 ListBuckets, 2 GetObject),
counted here from the vendor JSON, and nothing else: not the ``ec2.amazonaws.com`` AssumeRole calls
that hand the role to the instance, not the IAM user's console calls from the same address, not
the honey-bucket rows.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from access_audit.core.events import AccessEvent
from access_audit.detect.loader import load_rules
from access_audit.ingest.files import LineReader
from access_audit.parse import ParserRegistry
from access_audit.testing import FrozenClock

RULE = "aws_instance_credentials_outside_aws"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SAMPLE = "ec2_proxy_s3_exfiltration_2020-09-14011940.json"


def events(folder: Path) -> list[AccessEvent]:
    registry = ParserRegistry(clock=FrozenClock(NOW))
    out: list[AccessEvent] = []
    dead = 0
    for rec in LineReader([folder]):
        res = registry.parse(rec)
        out.extend(res.events)
        dead += len(res.dead_letters)
    assert dead == 0
    return out


def test_flags_exactly_the_stolen_instance_credentials(datasets: Path) -> None:
    folder = datasets / "otrf_aws_cloudtrail"
    rule = load_rules([], include_default=True).by_id()[RULE]
    evs = events(folder)
    assert len(evs) == 103 + 301
    hits = [ev for ev in evs if rule.evaluate(ev)]
    vendor = [json.loads(line) for line in (folder / SAMPLE).read_text(encoding="utf-8").splitlines() if line.strip()]
    want = [r["eventID"] for r in vendor if r["userIdentity"].get("type") == "AssumedRole"
            and r["userIdentity"]["principalId"].endswith(":i-0317f6c6b66ae9c40")]
    assert len(want) == 11
    assert sorted(ev.labels["aws_event_id"] for ev in hits) == sorted(want)
    assert Counter(ev.event.action for ev in hits) == {"ListObjects": 7, "ListBuckets": 2, "GetObject": 2}
    assert {(ev.user.name, ev.source.ip) for ev in hits} == {("i-0317f6c6b66ae9c40", "1.2.3.4")}  # type: ignore[union-attr]
    # the same address is used by the IAM user: the identity, not the address, decides
    assert any(ev.labels.get("aws_identity_type") == "IAMUser" and ev.source and ev.source.ip == "1.2.3.4"
               for ev in evs)


def test_configured_ranges_are_trusted(datasets: Path, tmp_path: Path) -> None:
    """The cidr list of the rule is the configuration: with the attacker's address in it, nothing fires."""
    src = Path(__file__).resolve().parents[2] / "detectors" / f"{RULE}.yml"
    text = src.read_text(encoding="utf-8")
    assert "not: {cidr: []}" in text
    (tmp_path / f"{RULE}.yml").write_text(text.replace("not: {cidr: []}", "not: {cidr: [1.2.0.0/16]}"),
                                          encoding="utf-8")
    rule = load_rules([tmp_path], include_default=False).by_id()[RULE]
    evs = events(datasets / "otrf_aws_cloudtrail")
    assert not [ev for ev in evs if rule.evaluate(ev)]
