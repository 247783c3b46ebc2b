"""Build step: ship the rule pack, the notification templates and the Kibana saved objects inside
the package.

``detectors/``, ``notifications/`` and ``deploy/kibana/`` stay at the top of the repository, where
they are edited and reviewed. A wheel (pip, pipx, the Docker image) gets a copy as
``access_audit/_detectors``, ``access_audit/_notifications`` and ``access_audit/_kibana``, which the
loaders find when the top-level folders are not beside the code. An editable install reads the
top-level folders directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
CONTENT = {"detectors": "_detectors", "notifications": "_notifications", "deploy/kibana": "_kibana"}


class BuildPyWithContent(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for src, dst in CONTENT.items():
            source = ROOT / src
            if not source.is_dir():
                raise SystemExit(f"{source} is missing: the wheel would ship without it")
            target = Path(self.build_lib) / "access_audit" / dst
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildPyWithContent})
