"""The dashboard's model (``static/cutline/js/model.js``) under Node's test runner.

The model is plain JavaScript with no DOM, so its rules (stream sequence numbers,
snapshot progress, markers) are tested without a browser, here, in milliseconds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def test_the_dashboard_model_passes_its_javascript_tests() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js (apt-get install nodejs) to run tests/e2e/js/")
    result = subprocess.run(
        [node, "--test", "tests/e2e/js/model.test.js"], cwd=BASE_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
