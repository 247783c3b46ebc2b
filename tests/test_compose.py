"""docker-compose.yml is valid and in step with scripts/services and the CLI.

No Docker engine runs here: Debian's docker-compose validates the file (`config`) without one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from access_audit.cli import app
from access_audit.settings import Settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_validates(tmp_path: Path):
    exe = shutil.which("docker-compose")
    if exe is None:
        msg = "docker-compose is not installed (apt-get install docker-compose; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "slack_token").write_text("xoxb-test")
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    r = subprocess.run([exe, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def _script_default(name: str) -> str:
    m = re.search(rf'^{name}="\$\{{{name}:-([^}}]+)\}}"', (REPO / "scripts" / "services").read_text(), re.M)
    assert m, f"{name} not found in scripts/services"
    return m.group(1)


def test_server_versions_match_the_test_servers(compose: dict):
    services = compose["services"]
    assert services["kafka"]["image"].endswith(":" + _script_default("KAFKA_VERSION"))
    es_version = _script_default("ES_VERSION")
    assert services["elasticsearch"]["image"].endswith(":" + es_version)
    assert services["kibana"]["image"].endswith(":" + es_version)


def test_every_service_has_a_healthcheck_and_data_on_volumes(compose: dict):
    for name, svc in compose["services"].items():
        assert "healthcheck" in svc, name
    for name in ("kafka", "elasticsearch", "worker"):
        assert any(":" in v for v in compose["services"][name]["volumes"]), name


def test_app_services_run_real_cli_commands_with_real_settings(compose: dict):
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    fields = set(Settings.model_fields)
    for name in ("worker", "scheduler", "api", "kafka-init"):
        svc = compose["services"][name]
        assert svc["command"][0] in commands, f"{name}: {svc['command'][0]!r} is not an access-audit command"
        for key in svc["environment"]:
            assert key.startswith("ACCESS_AUDIT_")
            field = key.removeprefix("ACCESS_AUDIT_").lower()
            assert field in fields or field.removesuffix("_file") in fields, f"{name}: {key} is not a setting"
    env = compose["services"]["worker"]["environment"]
    assert env["ACCESS_AUDIT_KAFKA_TOPICS"] == '["access-audit.raw"]' == f'["{Settings().kafka_topics[0]}"]'
