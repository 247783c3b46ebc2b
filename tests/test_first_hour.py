"""A new user's first hour (issue 14), on the built wheel installed into a fresh venv.

The wheel is built from this checkout and installed as pip, pipx and the Docker image install it
(not editable), with its dependencies from a wheelhouse (``ACCESS_AUDIT_WHEELHOUSE``, default
``~/.cache/access-audit-wheelhouse``) that is filled from PyPI only for what it lacks, so a second
run works offline. Every command runs from a directory outside the checkout, and any traceback in
any output fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path(os.environ.get("ACCESS_AUDIT_WHEELHOUSE") or Path.home() / ".cache" / "access-audit-wheelhouse")

pytestmark = pytest.mark.integration  # builds a wheel and a venv: a minute or two


def _pip(python: str | Path, *args: str, offline_first: bool = True) -> None:
    """pip with the wheelhouse; from PyPI only when the wheelhouse cannot satisfy the request."""
    base = [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args, "--find-links", str(WHEELHOUSE)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # else pip sees the checkout as installed
    if offline_first and subprocess.run([*base, "--no-index"], capture_output=True, env=env).returncode == 0:
        return
    r = subprocess.run(base, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


@dataclass
class Installed:
    venv: Path
    home: Path  # a directory outside the checkout, where the user works

    def run(self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCESS_AUDIT_", "PYTHON"))}
        full_env.update({"COLUMNS": "120", "HOME": str(self.home), **(env or {})})
        r = subprocess.run([str(self.venv / "bin" / "access-audit"), *args], capture_output=True, text=True,
                           cwd=self.home, env=full_env, input=stdin, timeout=timeout)
        for stream in (r.stdout, r.stderr):
            assert "Traceback" not in stream, f"access-audit {' '.join(args)}:\n{stream}"
        return r


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("first-hour")
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    _pip(sys.executable, "download", "--dest", str(WHEELHOUSE), "setuptools>=77")  # the build backend
    dist = tmp / "dist"
    _pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(dist), str(REPO), offline_first=True)
    (wheel,) = dist.glob("access_audit-*.whl")
    _pip(sys.executable, "download", "--dest", str(WHEELHOUSE), str(wheel))
    for stale in WHEELHOUSE.glob("access_audit-*"):  # only the dependencies belong there
        stale.unlink()
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(venv / "bin" / "python", "install", str(wheel))
    home = tmp / "home"
    home.mkdir()
    return Installed(venv, home)


def test_the_wheel_carries_the_rule_pack_and_templates(installed: Installed):
    r = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                        "import access_audit, pathlib; p = pathlib.Path(access_audit.__file__).parent; "
                        "print(p); print(len(list((p / '_detectors').glob('*.yml')))); "
                        "print((p / '_notifications' / 'authority').is_dir())"],
                       capture_output=True, text=True, cwd=installed.home, env={"PATH": os.environ["PATH"]})
    where, n_rules, templates = r.stdout.split()
    assert where.startswith(str(installed.venv)), "the venv must not import the checkout"
    assert int(n_rules) == len(list((REPO / "detectors").glob("*.yml")))
    assert templates == "True"


def test_version_help_and_the_demo_from_another_directory(installed: Installed):
    from access_audit import __version__

    assert installed.run("--version").stdout.strip() == f"access-audit {__version__}"
    detectors_help = installed.run("detectors", "--help").stdout
    assert all(f" {c} " in detectors_help for c in ("test", "lint", "list", "eval"))
    assert "<bool>" not in installed.run("run", "--help").stdout

    r = installed.run("demo", "--days", "1", "--data-dir", "demo-data")
    assert r.returncode == 0, r.stderr
    assert "Injected scenarios" in r.stderr and "alerts" in r.stderr
    assert (installed.home / "demo-data" / "events.db").is_file()
    lint = installed.run("detectors", "lint")
    assert lint.returncode == 0 and " 0 problems" in lint.stdout


def test_the_first_hour(installed: Installed, datasets: Path):
    """What a new user does in the first hour, on the installed wheel: every output free of tracebacks."""
    import gzip
    import json

    home = installed.home
    dd = ["--data-dir", "hour"]
    ssh = (datasets / "loghub" / "OpenSSH_2k.log").read_bytes().splitlines(keepends=True)
    logs = home / "logs"
    logs.mkdir()
    (logs / "auth.log").write_bytes(b"".join(ssh[:1500]))
    (logs / "README.md").write_text("where these logs come from\n")
    (logs / "old.log.gz").write_bytes(b"this is not gzip\n")

    # 1. The folder: the corrupt .gz is named, the README is listed as skipped, the rest is stored.
    r = installed.run("run", "-q", "--input", "logs", *dd)
    assert r.returncode == 1 and "corrupt gzip" in r.stderr and "skipped" in r.stderr
    first = json.loads(r.stdout)
    assert first["events_new"] >= 1480 and first["alerts_new"] > 0
    (logs / "old.log.gz").unlink()

    # 2. logrotate while the daemon writes: nothing stored twice, no alert raised again.
    with (logs / "auth.log").open("ab") as fh:
        fh.write(b"".join(ssh[1500:1800]))
    (logs / "auth.log").rename(logs / "auth.log.1")
    (logs / "auth.log").write_bytes(b"".join(ssh[1800:]))
    second = json.loads(installed.run("run", "-q", "--input", "logs", *dd).stdout)
    assert second["events_new"] == second["events"] - first["events"]
    (logs / "auth.log.2.gz").write_bytes(gzip.compress((logs / "auth.log.1").read_bytes()))
    (logs / "auth.log.1").unlink()
    third = installed.run("run", "-q", "--input", "logs", *dd)
    assert third.returncode == 0
    assert (json.loads(third.stdout)["events_new"], json.loads(third.stdout)["alerts_new"]) == (0, 0)

    # 3. The CSV export of the honey bucket gets a parser; CloudTrail beside it too.
    trail = json.loads(installed.run("run", "-q", "--input", str(datasets / "otrf_aws_cloudtrail"), *dd).stdout)
    assert trail["by_log_type"] == {"aws.s3_honeybucket": 301, "aws.cloudtrail": 103}

    # 4. Mistakes: one line, non-zero, never a traceback.
    wrong = installed.run("run", "-q", "--input", "logs/auth.log", "--log-type", "nginx", "--data-dir", "w")
    assert wrong.returncode == 1 and "--log-type nginx right?" in wrong.stderr
    for args, env, expect in [
        (("query", "--since", "99999999d", *dd), {}, "invalid time"),
        (("query", "source.ip:999.1.1.1", *dd), {}, "invalid address"),
        (("query", "user.nmae:fztu", *dd), {}, "did you mean user.name"),
        (("serve", "--port", "99999"), {}, "--port"),
        (("detectors", "lint", "--rules", "no-such-rules"), {}, "does not exist"),
        (("status", *dd), {"ACCESS_AUDIT_STORE": "mongodb"}, "invalid setting STORE"),
        (("status", *dd), {"ACCESS_AUDIT_BATCH_SIZE": "abc"}, "invalid setting BATCH_SIZE"),
        (("status", *dd), {"ACCESS_AUDIT_CONFIG": "missing.yml"}, "no such config file"),
        (("run", "--input", "logs/auth.log", "--year", "99999"), {}, "--year"),
        (("alerts", "list", "-f", "xml", *dd), {}, "unknown format"),
    ]:
        r = installed.run(*args, env=env)
        assert r.returncode != 0 and expect in r.stderr, (args, r.stderr)
    (home / "typo.yml").write_text("SLACK_TOKN: xoxb-0\n")
    r = installed.run("status", *dd, env={"ACCESS_AUDIT_CONFIG": "typo.yml"})
    assert r.returncode == 0 and "did you mean SLACK_TOKEN?" in r.stderr

    # 5. What a user looks for: find the alerts, work one, query the evidence.
    alerts = [json.loads(x) for x in installed.run("alerts", "list", "-f", "json", *dd).stdout.splitlines()]
    brute = next(a for a in alerts if a["rule_id"] == "ssh_brute_force")
    assert installed.run("alerts", "ack", brute["id"][:8], *dd).returncode == 0
    assert installed.run("alerts", "resolve", brute["id"][:8], *dd).returncode == 0
    shown = json.loads(installed.run("alerts", "show", brute["id"], "-f", "json", *dd).stdout)
    assert shown["status"] == "resolved"
    hits = installed.run("query", shown["query"], "--log-type", "sshd", "-f", "csv", *dd)
    assert hits.returncode == 0 and len(hits.stdout.splitlines()) > 1
    assert installed.run("dead-letters", "list", "--data-dir", "w").returncode == 0
    assert installed.run("status", "-f", "csv", *dd).stdout.startswith("what,key,count")
