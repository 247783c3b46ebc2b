"""Input generators shared by the hypothesis tests (tests/fuzz) and the long run (bench/fuzz.py).

Each generator takes a ``random.Random`` so that hypothesis can drive it (``st.randoms()``) and
the bench can run it a million times without hypothesis' overhead. Inputs are mutations of real
records (the shared datasets) plus structure-aware JSON edits on the keys the parsers read, so
most inputs get past the first check of a parser instead of dying at "invalid JSON".
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

# Values that break naive code: wrong types, huge and tiny numbers, odd strings.
NASTY: list[Any] = [
    None, True, False, 0, -1, 1 << 63, -(1 << 63) - 1, 1e308, -1e308, 1.5, "", " ", "-", "\x00", "\ud800",
    "9999-12-31T23:59:59Z", "0000-01-01", "1970-01-01T00:00:00Z", "2026-13-45T99:99:99Z", "NaN", "null",
    "1.2.3.4.5", "::ffff:1.2.3.4", "300.1.1.1", "fe80::1%eth0", "a" * 5000, "é" * 100, "\u202e", "%s%n",
    [], {}, [None], {"": None}, ["x"] * 50, {"a": {"b": {"c": {}}}}, "\r\n", "${jndi:ldap://x}",
]

SEED_LINES: list[bytes] = [
    b'203.0.113.7 - alice [23/Nov/2026:11:58:05 +0100] "GET /crm/customers/100019 HTTP/1.1" 200 5120 "-" "curl/8"',
    b'10.0.0.5 - - [01/Jan/2026:00:00:00 +0000] "POST /login?u=%41 HTTP/2.0" 401 0 "https://x/" "Mozilla/5.0"',
    b"Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for root from 183.62.140.253 port 38926 ssh2",
    b"2026-11-23T11:58:05.123+01:00 web-1 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/sh",
    b"Nov 23 11:58:05 web-1 su[311]: pam_unix(su:session): session opened for user root by alice(uid=1000)",
    b'{"@timestamp": "2026-11-23T11:58:05Z", "event": {"action": "login", "outcome": "success"},'
    b' "user": {"name": "alice"}, "source": {"ip": "203.0.113.7"}}',
]
# Database audit lines (pgAudit server log with a '%m [%p] %q%u@%d ' prefix; MariaDB server_audit, documented form).
SEED_LINES[-1:-1] = [
    b'2026-11-23 11:58:05.123 UTC [4711] alice@crm LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.account,'
    b'"select * from account",<not logged>',
    b"20261123 11:58:05,db1,root,10.0.0.5,29,913,QUERY,crm,'SELECT a, b FROM t',0",
]
# Squid access log, native and combined (documented formats; no real sample in the datasets).
SEED_LINES[-1:-1] = [
    b"1764000000.123    180 192.0.2.24 TCP_MISS/200 4120 GET http://www.example.org/a/b.php?x=1 alice "
    b"HIER_DIRECT/203.0.113.80 text/html",
    b"1764000001.004      0 192.0.2.25 TCP_DENIED/403 3946 CONNECT evil.example.net:443 - HIER_NONE/- text/html",
    b'192.0.2.24 - alice [24/Nov/2026:10:00:00 +0000] "GET http://www.example.org/dl/setup.exe HTTP/1.1" 200 '
    b'4120 "https://ref.example.net/" "Microsoft BITS/7.8" TCP_MISS:HIER_DIRECT',
]

LOG_TYPES: list[str | None] = [None, "syslog", "http", "aws.cloudtrail", "okta.system", "github.audit", "ecs",
                               "postgresql.pgaudit", "mysql.audit", "windows.security",
                               "duo.authentication", "duo.administrator", "onelogin.events",
                               "onepassword.itemusage", "onepassword.signinattempt", "box.event",
                               "salesforce.login", "salesforce.event", "zoom.operation", "zoom.activity",
                               "slack.audit", "squid.access"]


# Panther fixtures without a time field, and the field their vendor documents.
_UNTIMED = {"Duo.Authentication": "isotimestamp", "OneLogin.Events": "created_at", "Box.Event": "created_at",
            "Slack.AuditLogs": "date_create"}


def load_seeds(datasets: Path | None, per_file: int = 300) -> tuple[list[bytes], list[dict[str, Any]]]:
    """(text lines, JSON objects) from the shared datasets, plus the built-in seeds."""
    lines = list(SEED_LINES)
    objs: list[dict[str, Any]] = [json.loads(SEED_LINES[-1])]
    if datasets is None or not datasets.is_dir():
        return lines, objs
    for name in ("loghub/OpenSSH_2k.log", "loghub/Linux_2k.log"):
        p = datasets / name
        if p.is_file():
            lines += p.read_bytes().splitlines()[:per_file]
    for name in ("AWS.CloudTrail", "GitHub.Audit", "Okta.SystemLog", "Duo.Administrator", "Duo.Authentication",
                 "OneLogin.Events", "OnePassword.ItemUsage", "OnePassword.SignInAttempt", "Box.Event",
                 "Salesforce.Login", "Salesforce.LoginAs", "Salesforce.BulkApiResultEventStore",
                 "Salesforce.ApiAnomalyEventStore", "Zoom.Operation", "Zoom.Activity", "Slack.AuditLogs"):
        p = datasets / "panther_tests" / f"{name}.jsonl"
        if p.is_file():
            for row in p.read_text().splitlines()[:per_file]:
                ev = json.loads(row).get("event")
                if isinstance(ev, dict):
                    objs.append(ev)
                    if name in _UNTIMED:  # these fixtures have no time: a timed copy reaches the mapping
                        objs.append({**ev, _UNTIMED[name]: "2026-11-20T10:00:00+00:00"})
    p = datasets / "pgaudit_regress" / "pgaudit.out"
    if p.is_file():
        lines += [x for x in p.read_bytes().splitlines() if b"AUDIT: " in x][:per_file]
    # Windows Security logons: the NXLog and export shapes (OTRF) and Sentinel rows (msticpy).
    win = sorted((datasets / "otrf_windows_security").glob("*.jsonl"))[:3]
    win += [datasets / "msticpy_testdata" / "failed_logons.from_pkl.jsonl"]
    for p in win:
        if p.is_file():
            objs += [json.loads(x) for x in p.read_text().splitlines()[:per_file // 10] if x.strip()]
    p = datasets / "otrf_aws_cloudtrail" / "ec2_proxy_s3_exfiltration_2020-09-14011940.json"
    if p.is_file():
        for row in p.read_text().splitlines()[:per_file]:
            try:
                obj = json.loads(row)
            except ValueError:
                continue
            if isinstance(obj, dict):
                objs.append(obj)
    return lines, objs


def mutate_bytes(rng: random.Random, data: bytes, n: int | None = None) -> bytes:
    """A few byte-level edits: flip, insert, delete, duplicate a slice, splice in a nasty token."""
    b = bytearray(data)
    for _ in range(n if n is not None else rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2 and b:
            del b[pos:pos + rng.randint(1, 16)]
        elif op == 3 and b:
            j = rng.randrange(len(b))
            b[pos:pos] = b[j:j + rng.randint(1, 32)]
        elif op == 4:
            tok = rng.choice([b"\x00", b"\xff\xfe", b"\r", b"\n", b'"', b"[", b"]", b"{", b"}", b":", b"%",
                              b"\\", b"\xe2\x80\xae", b"  ", b"-", b"9" * 30, b"ssh2", b"port ", b"for "])
            b[pos:pos] = tok
        else:
            b = b[:pos]
    return bytes(b)


def mutate_obj(rng: random.Random, obj: Any, depth: int = 0) -> Any:
    """Structure-aware: replace, drop or retype values anywhere in a decoded JSON object."""
    if isinstance(obj, dict) and obj:
        out = dict(obj)
        for _ in range(rng.randint(1, 3)):
            k = rng.choice(list(out))
            r = rng.random()
            if r < 0.3:
                out[k] = rng.choice(NASTY)
            elif r < 0.45:
                del out[k]
                if not out:
                    break
            elif r < 0.85 and depth < 6:
                out[k] = mutate_obj(rng, out[k], depth + 1)
            else:
                out[rng.choice(["", "x", k + ".y", "@timestamp", "eventTime", "published"])] = rng.choice(NASTY)
        return out
    if isinstance(obj, list) and obj:
        out_l = list(obj)
        i = rng.randrange(len(out_l))
        out_l[i] = mutate_obj(rng, out_l[i], depth + 1) if rng.random() < 0.7 else rng.choice(NASTY)
        return out_l
    if isinstance(obj, str) and obj and rng.random() < 0.5:
        return mutate_bytes(rng, obj.encode("utf-8", "surrogatepass"), 1).decode("utf-8", "replace")
    return rng.choice(NASTY)


def encode(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def record_input(rng: random.Random, lines: list[bytes], objs: list[dict[str, Any]]) -> tuple[bytes, str | None]:
    """One generated parser input (raw bytes, log type or None to auto-detect)."""
    r = rng.random()
    log_type = rng.choice(LOG_TYPES)
    if r < 0.35:
        return mutate_bytes(rng, rng.choice(lines)), log_type
    if r < 0.8:
        obj = rng.choice(objs)
        for _ in range(rng.randint(1, 3)):
            obj = mutate_obj(rng, obj)
        data = encode(obj)
        if rng.random() < 0.1:
            data = mutate_bytes(rng, data, 1)
        return data, log_type
    if r < 0.9:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))), log_type
    return encode(rng.choice(NASTY)), log_type
