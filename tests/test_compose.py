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
    commands |= {g.name for g in app.registered_groups}
    fields = set(Settings.model_fields)
    for name in ("worker", "scheduler", "api", "kafka-init", "kibana-setup"):
        svc = compose["services"][name]
        assert svc["command"][0] in commands, f"{name}: {svc['command'][0]!r} is not an access-audit command"
        for key in svc["environment"]:
            assert key.startswith("ACCESS_AUDIT_")
            field = key.removeprefix("ACCESS_AUDIT_").lower()
            assert field in fields or field.removesuffix("_file") in fields, f"{name}: {key} is not a setting"
    env = compose["services"]["worker"]["environment"]
    assert env["ACCESS_AUDIT_KAFKA_TOPICS"] == '["access-audit.raw"]' == f'["{Settings().kafka_topics[0]}"]'


def _subcommand(group: str, name: str) -> object:
    (typer_app,) = [g.typer_instance for g in app.registered_groups if g.name == group]
    (cmd,) = [c for c in typer_app.registered_commands if (c.name or c.callback.__name__) == name]
    return cmd.callback


def test_kibana_setup_loads_the_saved_objects_once_kibana_is_healthy(compose: dict):
    """Issue 14: the one-shot loader imports deploy/kibana/access-audit.ndjson into the compose Kibana,
    with the settings of the other services (the index prefix the data views read)."""
    import inspect

    from access_audit.kibana import saved_objects_file

    services = compose["services"]
    setup = services["kibana-setup"]
    assert setup["command"][:2] == ["kibana", "load"]
    load = _subcommand("kibana", "load")
    assert {"url", "prefix"} <= set(inspect.signature(load).parameters)
    url = setup["command"][setup["command"].index("--url") + 1]
    assert url == "http://kibana:5601" and services["kibana"]["ports"] == ["127.0.0.1:5601:5601"]
    assert setup["depends_on"] == {"kibana": {"condition": "service_healthy"}}
    assert "/api/status" in " ".join(services["kibana"]["healthcheck"]["test"])
    assert setup["environment"] == services["worker"]["environment"]  # same ACCESS_AUDIT_ELASTICSEARCH_INDEX_PREFIX
    assert setup["build"] == "." and setup["restart"] != "unless-stopped"  # a job: it exits when done
    # the image carries the file: the Dockerfile copies it into the build, setup.py into the wheel
    rel = saved_objects_file().relative_to(REPO).parent.as_posix()
    assert f"COPY {rel} ./{rel}" in (REPO / "Dockerfile").read_text()
    assert f'"{rel}": "_kibana"' in (REPO / "setup.py").read_text()
    assert f"graft {rel}" in (REPO / "MANIFEST.in").read_text()
