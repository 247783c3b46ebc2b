"""Start-up (issue 10): ``access-audit --help`` and a read such as ``access-audit query`` import
only what they use. Each case runs in a fresh interpreter and lists the modules it loaded; no
timings are asserted, only that the heavy modules stay out: the composition root and the
detection engine, pydantic-settings, YAML, the drivers, pySigma, Jinja2, FastAPI; and a read
renders no help, so it goes without typer's help renderer and what that imports (Markdown,
tracebacks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Never needed to print help or to read the store.
HEAVY = ("pydantic_settings", "yaml", "jinja2", "sigma", "elasticsearch", "elastic_transport", "kafka",
         "confluent_kafka", "fastapi", "starlette", "uvicorn", "apscheduler", "slack_sdk", "maxminddb",
         "click", "asyncio", "access_audit.app", "access_audit.pipeline",
         "access_audit.detect", "access_audit.alert", "access_audit.parse", "access_audit.store.elasticsearch",
         "access_audit.ingest", "access_audit.notify", "access_audit.breach.workflow", "rich.progress")
# What typer's help renderer (typer.rich_utils) imports: a help page or a usage error needs it, a read does not.
HELP_RENDERER = ("typer.rich_utils", "rich.markdown", "rich.traceback", "markdown_it", "pygments")
# Not needed for help either: the settings and the stores.
HEAVY_FOR_HELP = (*HEAVY, "access_audit.settings", "access_audit.store")
# typer (0.29) converts every parameter it parses with a pydantic TypeAdapter, the top level's
# --version included: only the top-level help page, which parses none, goes without pydantic.
TOP_HELP = (*HEAVY_FOR_HELP, "pydantic", "pydantic_core")

PROBE = """
import json, sys
args = json.loads(sys.argv[1])
import access_audit.cli
if args is not None:
    try:
        access_audit.cli.main(args)
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _loaded(args: list[str] | None, tmp_path: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCESS_AUDIT_")}
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stderr.strip().splitlines()[-1])


def _heavy(loaded: list[str], heavy: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == h or m.startswith(h + ".") for h in heavy)]


def test_importing_the_cli_imports_nothing_heavy(tmp_path: Path) -> None:
    assert _heavy(_loaded(None, tmp_path), TOP_HELP) == []


@pytest.mark.parametrize("args", [["--help"], []])
def test_the_top_level_help_imports_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    loaded = _loaded(args, tmp_path)
    assert "typer.rich_utils" in loaded  # the help page was rendered by typer's rich help
    assert _heavy(loaded, TOP_HELP) == []


@pytest.mark.parametrize("args", [["query", "--help"], ["breach", "--help"], ["alerts"],
                                  ["detectors", "list", "--help"]])
def test_the_help_of_a_command_imports_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    loaded = _loaded(args, tmp_path)
    assert "typer.rich_utils" in loaded
    assert _heavy(loaded, HEAVY_FOR_HELP) == []


def test_a_usage_error_imports_nothing_heavy(tmp_path: Path) -> None:
    assert _heavy(_loaded(["qurey"], tmp_path), HEAVY_FOR_HELP) == []


def test_query_on_an_empty_store_imports_only_the_store(tmp_path: Path) -> None:
    from access_audit.settings import Settings
    from access_audit.store.opening import open_store

    open_store(Settings(data_dir=tmp_path / "d")).close()
    for fmt in ("json", "table"):
        loaded = _loaded(["query", "user.name:nobody", "--data-dir", str(tmp_path / "d"), "-f", fmt], tmp_path)
        assert "access_audit.store.sqlite" in loaded  # it did read the store
        assert _heavy(loaded, (*HEAVY, *HELP_RENDERER)) == [], fmt
